//! The coordinator of `loadtest run`: provisions, starts the fleet in this
//! process or in worker processes, waits for it to boot, runs the measuring
//! phase until the scenario is done, samples the server's RSS, merges the
//! processes' results into the [`Report`], and for `--compare-reference`
//! does it all again against a freshly started reference server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::{RunArgs, Scenario};
use crate::fleet::{Fleet, PartSpec};
use crate::plan;
use crate::progress::Bar;
use crate::provision::{self, ProvisionReport};
use crate::reference;
use crate::report::{Inputs, Report, RssSamples};
use crate::rss;
use crate::stats::{PartResult, Progress};
use crate::worker::{Order, WorkerProcess};

/// How often the coordinator looks at the fleet.
const POLL: Duration = Duration::from_millis(100);
/// How long the commands scenario may run past `--duration` for answers
/// (`?wait=true` waits up to 35 s) and trailing CALLs.
const COMMANDS_GRACE: Duration = Duration::from_secs(90);
/// The process name looked for when no `--server-pid` is given.
const SERVER_NAME: &str = "voltgate";

/// Runs the scenario of `args` and returns its report; progress on stderr
/// when it is a terminal.
pub async fn run(args: RunArgs) -> anyhow::Result<Report> {
    run_with(args, &Bar::for_stderr()).await
}

/// [`run`] with a given progress bar.
pub async fn run_with(args: RunArgs, bar: &Bar) -> anyhow::Result<Report> {
    check(&args)?;
    crate::raise_open_files_limit();
    let provision = if args.skip_provision {
        None
    } else {
        Some(provision::provision(&args, bar).await?)
    };
    let server_pid = args.server_pid.or_else(|| rss::find_process(SERVER_NAME));
    let mut report = run_fleet(&args, &args.target_name, server_pid, provision, bar).await?;
    if args.compare_reference {
        let (mut child, addr) = reference::spawn_child(&exe(&args)?).await?;
        let reference_args = RunArgs {
            ws_url: format!("ws://{addr}/ws"),
            target_name: "reference".into(),
            skip_provision: true,
            compare_reference: false,
            server_pid: child.id(),
            report: None,
            chart: None,
            ..args.clone()
        };
        let outcome = run_fleet(&reference_args, "reference", child.id(), None, bar).await;
        let _ = child.kill().await;
        report.attach_reference(outcome.context("the reference run")?);
    }
    bar.finish();
    Ok(report)
}

fn check(args: &RunArgs) -> anyhow::Result<()> {
    if args.stations == 0 {
        bail!("--stations must be at least 1");
    }
    if args.duration_secs <= 0.0 {
        bail!("--duration must be positive");
    }
    if args.compare_reference && !matches!(args.scenario, Scenario::Heartbeat | Scenario::Idle) {
        bail!("--compare-reference is for the heartbeat and idle scenarios");
    }
    if args.scenario == Scenario::Batch && args.stations > args.per_process {
        bail!("the batch scenario times every station from one process: --stations must not exceed --per-process");
    }
    if args.scenario == Scenario::Commands && args.rate <= 0.0 {
        bail!("--rate must be positive for the commands scenario");
    }
    Ok(())
}

/// The executable workers and the reference server are started from.
fn exe(args: &RunArgs) -> anyhow::Result<PathBuf> {
    match &args.exe {
        Some(exe) => Ok(exe.clone()),
        None => std::env::current_exe().context("finding the loadtest executable"),
    }
}

/// One process's share of the fleet: here, or in a worker.
enum Part {
    Local(Fleet),
    Worker(Box<WorkerProcess>),
}

impl Part {
    fn progress(&self) -> Progress {
        match self {
            Part::Local(fleet) => fleet.progress(),
            Part::Worker(worker) => worker.progress(),
        }
    }

    async fn measure(&mut self, args: &RunArgs) -> anyhow::Result<()> {
        match self {
            Part::Local(fleet) => {
                fleet.measure(args);
                Ok(())
            }
            Part::Worker(worker) => worker.order(Order::Measure).await,
        }
    }

    async fn finish(self) -> anyhow::Result<PartResult> {
        match self {
            Part::Local(fleet) => Ok(fleet.finish().await),
            Part::Worker(worker) => worker.finish().await,
        }
    }

    fn has_exited(&mut self) -> bool {
        match self {
            Part::Local(_) => false,
            Part::Worker(worker) => worker.has_exited(),
        }
    }
}

fn progress(parts: &[Part]) -> Progress {
    let mut sum = Progress {
        commands_done: true,
        ..Progress::default()
    };
    for part in parts {
        sum.merge(&part.progress());
    }
    sum
}

fn check_alive(parts: &mut [Part]) -> anyhow::Result<()> {
    if parts.iter_mut().any(Part::has_exited) {
        bail!("a worker process exited before the run ended (see its messages above)");
    }
    Ok(())
}

async fn run_fleet(
    args: &RunArgs,
    target: &str,
    server_pid: Option<u32>,
    provision: Option<ProvisionReport>,
    bar: &Bar,
) -> anyhow::Result<Report> {
    let slices = plan::split(args.stations, args.per_process);
    let processes = slices.len();
    let stations = u64::from(args.stations);
    let mut rss = RssSamples {
        pid: server_pid,
        before: server_pid.and_then(rss::rss_bytes),
        ..RssSamples::default()
    };
    let mut notes = Vec::new();
    bar.start_fleet(target, args.stations);
    let started = Instant::now();
    let mut parts = Vec::with_capacity(processes);
    if processes == 1 {
        let spec = PartSpec {
            args: args.clone(),
            slice: slices[0],
        };
        parts.push(Part::Local(Fleet::start(&spec).await?));
    } else {
        let exe = exe(args)?;
        for slice in slices {
            let spec = PartSpec {
                args: args.clone(),
                slice,
            };
            parts.push(Part::Worker(Box::new(WorkerProcess::spawn(&exe, &spec)?)));
        }
    }

    let boot_deadline = started + args.boot_timeout();
    let boot_secs = loop {
        let p = progress(&parts);
        bar.update("booting", &p);
        if p.booted >= stations {
            break Some(started.elapsed().as_secs_f64());
        }
        if Instant::now() >= boot_deadline {
            notes.push(format!(
                "only {} of {stations} stations booted within --boot-timeout {}s; measured anyway",
                p.booted, args.boot_timeout_secs
            ));
            break None;
        }
        check_alive(&mut parts)?;
        tokio::time::sleep(POLL).await;
    };
    rss.booted = server_pid.and_then(rss::rss_bytes);

    let booted_at_start = progress(&parts).booted;
    let measure_started = Instant::now();
    for part in &mut parts {
        part.measure(args).await?;
    }
    let end = measure_started + args.duration();
    loop {
        let p = progress(&parts);
        bar.update("measuring", &p);
        let now = Instant::now();
        let done = match args.scenario {
            Scenario::Storm => p.rebooted >= booted_at_start || now >= end,
            Scenario::Commands | Scenario::Batch if now >= end + COMMANDS_GRACE => {
                notes.push(format!(
                    "commands: still waiting for answers {}s after --duration; stopped",
                    COMMANDS_GRACE.as_secs()
                ));
                true
            }
            Scenario::Commands | Scenario::Batch => p.commands_done,
            Scenario::Charge | Scenario::Heartbeat | Scenario::Idle => now >= end,
        };
        if done {
            break;
        }
        check_alive(&mut parts)?;
        tokio::time::sleep(POLL).await;
    }
    let measured = measure_started.elapsed();
    rss.end = server_pid.and_then(rss::rss_bytes);

    let results = futures_util::future::join_all(parts.into_iter().map(Part::finish)).await;
    let mut merged = PartResult::default();
    for result in results {
        merged.merge(&result?);
    }
    Ok(Report::build(Inputs {
        args,
        target,
        processes,
        result: merged,
        measured,
        boot_secs,
        rss,
        provision,
        notes,
    }))
}
