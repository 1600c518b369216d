//! Fleets larger than `--per-process` run in several processes (one process
//! cannot hold more than 20,000 open files). The parent re-executes itself
//! as `loadtest worker --spec <json>`; the worker runs its [`Fleet`] and
//! talks JSON lines: orders on stdin (`"measure"`, `"stop"`), events on
//! stdout (progress every 250 ms, then one result with its histograms).
//!
//! This module holds both ends: [`main`] for the worker and
//! [`WorkerProcess`] for the parent.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

use crate::fleet::{Fleet, PartSpec};
use crate::stats::{PartResult, Progress};

/// How often a worker reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How long a stopping worker may take to hand in its result.
const RESULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Parent → worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Start measuring.
    Measure,
    /// Stop and hand in the result.
    Stop,
}

/// Worker → parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// Live figures.
    Progress(Progress),
    /// The final result.
    Result(Box<PartResult>),
}

/// The worker: runs its part of the fleet as the parent orders.
pub async fn main(spec: &str) -> anyhow::Result<()> {
    let spec: PartSpec = serde_json::from_str(spec).context("worker spec")?;
    let mut fleet = Fleet::start(&spec).await?;
    let mut orders = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => emit(&mut stdout, &Event::Progress(fleet.progress())).await?,
            line = orders.next_line() => match line? {
                Some(line) => match serde_json::from_str::<Order>(&line)? {
                    Order::Measure => fleet.measure(&spec.args),
                    Order::Stop => break,
                },
                None => break, // the parent is gone
            },
        }
    }
    let result = fleet.finish().await;
    emit(&mut stdout, &Event::Result(Box::new(result))).await
}

async fn emit(stdout: &mut tokio::io::Stdout, event: &Event) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(event)?;
    line.push(b'\n');
    stdout.write_all(&line).await?;
    stdout.flush().await?;
    Ok(())
}

/// A worker process, seen from the parent.
pub struct WorkerProcess {
    child: Child,
    stdin: ChildStdin,
    progress: Arc<Mutex<Progress>>,
    result: oneshot::Receiver<anyhow::Result<PartResult>>,
}

impl WorkerProcess {
    /// Starts `exe worker --spec <spec>`.
    pub fn spawn(exe: &Path, spec: &PartSpec) -> anyhow::Result<Self> {
        let mut child = Command::new(exe)
            .arg("worker")
            .arg("--spec")
            .arg(serde_json::to_string(spec)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting worker {}", exe.display()))?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let progress = Arc::new(Mutex::new(Progress::default()));
        let (tx, result) = oneshot::channel();
        let seen = progress.clone();
        tokio::spawn(async move {
            let outcome = read_events(stdout, &seen).await;
            let _ = tx.send(outcome);
        });
        Ok(WorkerProcess {
            child,
            stdin,
            progress,
            result,
        })
    }

    /// The worker's latest figures.
    pub fn progress(&self) -> Progress {
        self.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends an order.
    pub async fn order(&mut self, order: Order) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(&order)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Whether the worker has exited (before `finish`, it never should).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Stops the worker and returns its result.
    pub async fn finish(mut self) -> anyhow::Result<PartResult> {
        // A worker that already ended cannot take the order; its result
        // (or why there is none) is waiting below either way.
        let _ = self.order(Order::Stop).await;
        let result = match tokio::time::timeout(RESULT_TIMEOUT, self.result).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(anyhow::anyhow!("worker output reader ended")),
            Err(_) => Err(anyhow::anyhow!(
                "no result from worker within {RESULT_TIMEOUT:?}"
            )),
        };
        let _ = self.child.wait().await;
        result
    }
}

async fn read_events(
    stdout: tokio::process::ChildStdout,
    progress: &Mutex<Progress>,
) -> anyhow::Result<PartResult> {
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str::<Event>(&line) {
            Ok(Event::Progress(p)) => {
                *progress
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = p;
            }
            Ok(Event::Result(result)) => return Ok(*result),
            Err(_) => eprintln!("worker: {line}"),
        }
    }
    bail!("worker exited without a result")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_one_json_value_per_line() {
        assert_eq!(
            serde_json::to_string(&Order::Measure).unwrap(),
            r#""measure""#
        );
        let event = Event::Progress(Progress {
            booted: 3,
            ..Progress::default()
        });
        let line = serde_json::to_string(&event).unwrap();
        assert!(!line.contains('\n'));
        assert!(line.starts_with(r#"{"progress":{"#), "{line}");
        match serde_json::from_str::<Event>(&line).unwrap() {
            Event::Progress(p) => assert_eq!(p.booted, 3),
            Event::Result(_) => panic!("progress expected"),
        }
    }
}
