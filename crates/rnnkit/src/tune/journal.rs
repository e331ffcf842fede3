//! The study's state as an append-only journal: one JSON event per line in `journal.jsonl`,
//! appended under an exclusive lock on `journal.lock`, so any number of `rnnkit tune`
//! processes (on one machine, or on several sharing a filesystem whose locks work across
//! machines, such as NFSv4 or Lustre with `flock`) can share one study.
//!
//! Nothing is ever rewritten. The state is a fold over the events ([`StudyState`]); a process
//! reads the journal, decides, and appends while holding the lock, so decisions never race.
//! A process killed mid-append leaves at most a last line without its newline: readers ignore
//! it and the next writer cuts it off before appending.

use super::space::Params;
use super::spec::Budget;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A `tune` process joined the study (a session). Claims of an earlier session that never
    /// finished belong to a process that died: their jobs are offered again.
    Session {
        /// Its number (1, 2, ...).
        session: u64,
        /// Process id and host, for people reading the journal.
        pid: u32,
        /// The host name.
        host: String,
        /// Seconds since the Unix epoch.
        at: f64,
    },
    /// A new trial and its values.
    Trial {
        /// Its number (0, 1, ...).
        trial: u64,
        /// The sampled values.
        params: Params,
        /// Its training seed.
        seed: u64,
        /// Seconds since the Unix epoch.
        at: f64,
    },
    /// A worker took a job: train `trial` up to `rung`.
    Claim {
        /// The trial.
        trial: u64,
        /// The rung it trains to.
        rung: usize,
        /// The claiming session.
        session: u64,
        /// The worker of that session.
        worker: u32,
        /// Seconds since the Unix epoch.
        at: f64,
    },
    /// A job was given up before its rung (the study's time ran out, or its worker was
    /// stopped): the trial keeps its checkpoint and can be continued.
    Release {
        /// The trial.
        trial: u64,
        /// Seconds since the Unix epoch.
        at: f64,
    },
    /// A job finished: the trial's score at `rung`.
    Result {
        /// The trial.
        trial: u64,
        /// The rung reached.
        rung: usize,
        /// Epochs trained in all.
        epochs: usize,
        /// The objective as measured (not negated).
        value: f64,
        /// Validation loss per epoch so far, for learning curves.
        curve: Vec<f64>,
        /// Wall seconds of this job.
        seconds: f64,
        /// Seconds since the Unix epoch.
        at: f64,
    },
    /// The budget changed (`rnnkit tune --resume DIR --minutes M`): it replaces the study
    /// file's from here on, for every worker.
    Budget {
        /// The whole new budget.
        budget: Budget,
        /// The session that set it.
        session: u64,
        /// Seconds since the Unix epoch.
        at: f64,
    },
    /// A trial ended: `finished`, `stopped_early` (its own patience), `pruned` is implicit
    /// (never promoted), or `failed`.
    End {
        /// The trial.
        trial: u64,
        /// Why.
        status: TrialEnd,
        /// A message for a failure.
        message: String,
        /// Seconds since the Unix epoch.
        at: f64,
    },
}

/// How a trial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialEnd {
    /// It trained to the last rung.
    Finished,
    /// Its training stopped before the rung (early stopping, or `train.epochs` reached).
    StoppedEarly,
    /// Training failed (diverged, bad config); the message says why.
    Failed,
}

/// A trial as the journal knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct TrialState {
    /// Its number.
    pub trial: u64,
    /// Its values.
    pub params: Params,
    /// Its training seed.
    pub seed: u64,
    /// Created at (Unix seconds).
    pub created: f64,
    /// Each completed rung's result: rung → (epochs, value, seconds, at).
    pub results: BTreeMap<usize, RungResult>,
    /// Its live claim: the rung it trains to, the claiming session and worker.
    pub claim: Option<Claim>,
    /// How it ended, if it has.
    pub end: Option<(TrialEnd, String)>,
    /// The latest validation-loss curve reported.
    pub curve: Vec<f64>,
}

/// A job in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The rung being trained to.
    pub rung: usize,
    /// The session of the worker.
    pub session: u64,
    /// The worker.
    pub worker: u32,
}

/// One rung's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RungResult {
    /// Epochs trained when it was measured.
    pub epochs: usize,
    /// The objective.
    pub value: f64,
    /// Wall seconds of the job.
    pub seconds: f64,
    /// When (Unix seconds).
    pub at: f64,
}

impl TrialState {
    /// The highest completed rung.
    pub fn top_rung(&self) -> Option<usize> {
        self.results.keys().next_back().copied()
    }
}

/// The fold of a journal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StudyState {
    /// Every trial by number.
    pub trials: BTreeMap<u64, TrialState>,
    /// The latest session number.
    pub sessions: u64,
    /// When the first event was written (Unix seconds).
    pub started: Option<f64>,
    /// Each session's first and latest event (Unix seconds), in order.
    pub session_spans: Vec<(f64, f64)>,
    /// The latest budget set after the study began, if any (the study file's holds otherwise).
    pub budget: Option<Budget>,
}

impl StudyState {
    /// Applies one event.
    pub fn apply(&mut self, e: &Event) {
        let at = match e {
            Event::Session { at, .. }
            | Event::Trial { at, .. }
            | Event::Claim { at, .. }
            | Event::Release { at, .. }
            | Event::Result { at, .. }
            | Event::Budget { at, .. }
            | Event::End { at, .. } => *at,
        };
        self.started.get_or_insert(at);
        if let Some(span) = self.session_spans.last_mut() {
            span.1 = span.1.max(at);
        }
        match e {
            Event::Session { session, .. } => {
                self.sessions = self.sessions.max(*session);
                self.session_spans.push((at, at));
            }
            Event::Trial {
                trial,
                params,
                seed,
                at,
            } => {
                self.trials.insert(
                    *trial,
                    TrialState {
                        trial: *trial,
                        params: params.clone(),
                        seed: *seed,
                        created: *at,
                        results: BTreeMap::new(),
                        claim: None,
                        end: None,
                        curve: Vec::new(),
                    },
                );
            }
            Event::Claim {
                trial,
                rung,
                session,
                worker,
                ..
            } => {
                if let Some(t) = self.trials.get_mut(trial) {
                    t.claim = Some(Claim {
                        rung: *rung,
                        session: *session,
                        worker: *worker,
                    });
                }
            }
            Event::Release { trial, .. } => {
                if let Some(t) = self.trials.get_mut(trial) {
                    t.claim = None;
                }
            }
            Event::Result {
                trial,
                rung,
                epochs,
                value,
                curve,
                seconds,
                at,
            } => {
                if let Some(t) = self.trials.get_mut(trial) {
                    t.results.insert(
                        *rung,
                        RungResult {
                            epochs: *epochs,
                            value: *value,
                            seconds: *seconds,
                            at: *at,
                        },
                    );
                    t.curve = curve.clone();
                    if t.claim.is_some_and(|c| c.rung == *rung) {
                        t.claim = None;
                    }
                }
            }
            Event::Budget { budget, .. } => self.budget = Some(budget.clone()),
            Event::End {
                trial,
                status,
                message,
                ..
            } => {
                if let Some(t) = self.trials.get_mut(trial) {
                    t.end = Some((*status, message.clone()));
                    t.claim = None;
                }
            }
        }
    }

    /// Claims whose workers are gone (`alive(session, worker)` says no): their trials are
    /// continued from their checkpoints. `(trial, rung)`, oldest trial first.
    pub fn orphaned_claims(&self, alive: impl Fn(u64, u32) -> bool) -> Vec<(u64, usize)> {
        self.trials
            .values()
            .filter_map(|t| match t.claim {
                Some(c) if t.end.is_none() && !alive(c.session, c.worker) => {
                    Some((t.trial, c.rung))
                }
                _ => None,
            })
            .collect()
    }

    /// Epochs claimed or trained in all: each claim counts its whole rung, so workers running
    /// side by side never overshoot an epoch budget.
    pub fn epochs_committed(&self, rungs: &[usize]) -> usize {
        self.trials
            .values()
            .map(|t| {
                let done = t.results.values().map(|r| r.epochs).max().unwrap_or(0);
                let claimed = t
                    .claim
                    .map_or(0, |c| rungs.get(c.rung).copied().unwrap_or(0));
                done.max(claimed)
            })
            .sum()
    }
}

/// The journal of a study directory.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    lock_path: PathBuf,
}

/// Held while the journal is locked: read the state, decide, append, drop.
pub struct Locked<'a> {
    journal: &'a Journal,
    _lock: File,
    state: StudyState,
    /// Bytes of complete lines; a torn tail past this is cut before appending.
    good_len: u64,
}

impl Journal {
    /// The journal in `dir` (created on first append).
    pub fn new(dir: &Path) -> Self {
        Journal {
            path: dir.join("journal.jsonl"),
            lock_path: dir.join("journal.lock"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state without locking (a snapshot for reports; it may lag a writer).
    ///
    /// # Errors
    /// An unreadable file, a line that is not an event (naming the line).
    pub fn read(&self) -> Result<StudyState> {
        Ok(self.read_events()?.0)
    }

    fn read_events(&self) -> Result<(StudyState, u64)> {
        let mut text = String::new();
        match File::open(&self.path) {
            Ok(mut f) => {
                f.read_to_string(&mut text)
                    .map_err(|e| Error::read(&self.path, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::read(&self.path, e)),
        }
        // Only whole lines count: a torn last line (a writer killed mid-append) is ignored.
        let good_len = text.rfind('\n').map_or(0, |i| i + 1);
        let mut state = StudyState::default();
        for (n, line) in text[..good_len].lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let e: Event = serde_json::from_str(line).map_err(|e| Error::Data {
                path: self.path.display().to_string(),
                at: format!("line {}", n + 1),
                msg: format!("not a study event ({e}); the journal was edited by hand?"),
            })?;
            state.apply(&e);
        }
        Ok((state, good_len as u64))
    }

    /// Locks the journal (waiting for other processes) and reads it.
    ///
    /// # Errors
    /// The lock file cannot be created or locked; the journal cannot be read.
    pub fn lock(&self) -> Result<Locked<'_>> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| Error::Io {
                path: self.lock_path.display().to_string(),
                source: e,
            })?;
        lock.lock().map_err(|e| Error::Io {
            path: self.lock_path.display().to_string(),
            source: e,
        })?;
        let (state, good_len) = self.read_events()?;
        Ok(Locked {
            journal: self,
            _lock: lock,
            state,
            good_len,
        })
    }
}

impl Locked<'_> {
    /// The state as of the lock (and the events appended since).
    pub fn state(&self) -> &StudyState {
        &self.state
    }

    /// Appends `events` (one write, then fsync) and applies them to the state.
    ///
    /// # Errors
    /// The journal cannot be written.
    pub fn append(&mut self, events: &[Event]) -> Result<()> {
        let path = &self.journal.path;
        let io = |e: std::io::Error| Error::Io {
            path: path.display().to_string(),
            source: e,
        };
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        // Cut a torn tail left by a writer that was killed mid-line.
        if f.metadata().map_err(io)?.len() > self.good_len {
            f.set_len(self.good_len).map_err(io)?;
        }
        f.seek(SeekFrom::Start(self.good_len)).map_err(io)?;
        let mut text = String::new();
        for e in events {
            text.push_str(&serde_json::to_string(e).map_err(|e| Error::Config(e.to_string()))?);
            text.push('\n');
        }
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)?;
        self.good_len += text.len() as u64;
        for e in events {
            self.state.apply(e);
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rnnkit-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn trial(n: u64) -> Event {
        Event::Trial {
            trial: n,
            params: vec![("model.hidden_size".into(), toml::Value::Integer(32))],
            seed: n,
            at: 1.0,
        }
    }

    #[test]
    fn events_round_trip_and_fold() {
        let d = dir("fold");
        let j = Journal::new(&d);
        let mut l = j.lock().unwrap();
        l.append(&[trial(0), trial(1)]).unwrap();
        l.append(&[Event::Claim {
            trial: 0,
            rung: 0,
            session: 1,
            worker: 0,
            at: 2.0,
        }])
        .unwrap();
        assert_eq!(
            l.state().trials[&0].claim,
            Some(Claim {
                rung: 0,
                session: 1,
                worker: 0
            })
        );
        drop(l);
        let mut l = j.lock().unwrap();
        l.append(&[Event::Result {
            trial: 0,
            rung: 0,
            epochs: 1,
            value: 1.5,
            curve: vec![1.5],
            seconds: 3.0,
            at: 3.0,
        }])
        .unwrap();
        drop(l);
        let s = j.read().unwrap();
        assert_eq!(s.trials.len(), 2);
        assert_eq!(s.trials[&0].claim, None);
        assert_eq!(s.trials[&0].results[&0].value, 1.5);
        assert_eq!(s.trials[&0].params[0].1, toml::Value::Integer(32));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_ignored_then_cut() {
        let d = dir("torn");
        let j = Journal::new(&d);
        j.lock().unwrap().append(&[trial(0)]).unwrap();
        // A writer killed mid-append.
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(b"{\"event\":\"trial\",\"tri").unwrap();
        drop(f);
        assert_eq!(j.read().unwrap().trials.len(), 1);
        j.lock().unwrap().append(&[trial(1)]).unwrap();
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(j.read().unwrap().trials.len(), 2);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn orphaned_claims_are_those_of_dead_workers() {
        let mut s = StudyState::default();
        s.apply(&trial(0));
        s.apply(&trial(1));
        for (t, session) in [(0, 1), (1, 2)] {
            s.apply(&Event::Claim {
                trial: t,
                rung: 0,
                session,
                worker: 0,
                at: 0.0,
            });
        }
        assert_eq!(s.orphaned_claims(|session, _| session == 2), vec![(0, 0)]);
        assert_eq!(s.epochs_committed(&[1, 3]), 2);
        s.apply(&Event::Release { trial: 0, at: 0.0 });
        assert_eq!(s.orphaned_claims(|session, _| session == 2), vec![]);
    }

    #[test]
    fn a_garbled_line_names_its_number() {
        let d = dir("garbled");
        let j = Journal::new(&d);
        std::fs::write(
            j.path(),
            "{\"event\":\"session\",\"session\":1,\"pid\":1,\"host\":\"h\",\"at\":0}\nnot json\n",
        )
        .unwrap();
        let e = j.read().unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }
}
