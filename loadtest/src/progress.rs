//! The progress bar of long runs (indicatif, on stderr): stations provisioned,
//! then booted, with connections and message counts alongside. Hidden when
//! stderr is not a terminal, so logs and tests stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::stats::Progress;

/// The run's progress bar (a no-op when hidden).
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar on stderr, hidden when stderr is not a terminal.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
                )
                .expect("constant template"),
            );
            Bar(bar)
        } else {
            Bar::hidden()
        }
    }

    /// A bar that draws nothing.
    pub fn hidden() -> Self {
        Bar(ProgressBar::hidden())
    }

    /// Provisioning `stations` begins.
    pub fn start_provisioning(&self, stations: u32) {
        self.0.set_prefix("provisioning");
        self.0.set_length(u64::from(stations));
        self.0.set_position(0);
        self.0.set_message("registered");
    }

    /// `done` registrations answered.
    pub fn provisioned(&self, done: u32) {
        self.0.set_position(u64::from(done));
    }

    /// A fleet of `stations` against `target` starts connecting.
    pub fn start_fleet(&self, target: &str, stations: u32) {
        self.0.set_prefix(target.to_owned());
        self.0.set_length(u64::from(stations));
        self.0.set_position(0);
    }

    /// Live figures during `phase`.
    pub fn update(&self, phase: &str, p: &Progress) {
        self.0.set_position(p.booted);
        self.0.set_message(format!(
            "booted | {phase}: {} connected, {} failed attempts, {} sent, {} received",
            p.connected, p.connect_failures, p.sent, p.received
        ));
    }

    /// Removes the bar before the report is printed.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}
