//! The running cameras, changeable while the daemon runs: the control plane adds, removes,
//! changes and restarts cameras here, and reads their status and latest frames.
//!
//! Each camera keeps its own thread and cancellation token, so stopping or changing one never
//! touches another; a changed camera is stopped and started again with its new settings
//! (a GStreamer pipeline cannot change its source in place).

use super::VideoError;
use super::{spawn_camera, CameraSnapshot, CameraStatus, Frame, IngestOptions, LatestFrames};
use crate::config::CameraConfig;
use crate::reconcile::{self, Change};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a stopping camera may take to let go of its pipeline before it is left to
/// finish on its own (a half-open TCP connection can hold rtspsrc's teardown).
const STOP_WAIT: Duration = Duration::from_secs(5);

struct Running {
    cfg: CameraConfig,
    status: Arc<CameraStatus>,
    cancel: CancellationToken,
    /// `None` once stopped by [`Cameras::stop_all`] (kept for the final status).
    thread: Option<JoinHandle<()>>,
}

pub struct Cameras {
    opts: IngestOptions,
    frames: Arc<LatestFrames>,
    /// Cancelling it stops every camera (daemon shutdown); each camera has a child token.
    parent: CancellationToken,
    running: Mutex<BTreeMap<String, Running>>,
}

impl Cameras {
    pub fn new(opts: IngestOptions, frames: Arc<LatestFrames>, cancel: CancellationToken) -> Self {
        Self {
            opts,
            frames,
            parent: cancel,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock()
    }

    fn start(&self, cfg: CameraConfig) -> Result<Running, VideoError> {
        let status = Arc::new(CameraStatus::new(&cfg.name));
        let cancel = self.parent.child_token();
        let thread = spawn_camera(
            cfg.clone(),
            self.opts.clone(),
            self.frames.clone(),
            status.clone(),
            cancel.clone(),
        )
        .map_err(|e| VideoError::Pipeline {
            camera: cfg.name.clone(),
            message: format!("cannot start its thread: {e}"),
        })?;
        Ok(Running {
            cfg,
            status,
            cancel,
            thread: Some(thread),
        })
    }

    /// Stops a camera that is already out of the map, waiting at most [`STOP_WAIT`], and
    /// forgets its frame slot.
    fn stop(&self, mut r: Running) {
        Self::halt(&mut r);
        self.frames.forget(&r.cfg.name);
    }

    fn halt(r: &mut Running) {
        r.cancel.cancel();
        let Some(thread) = r.thread.take() else {
            return;
        };
        let end = Instant::now() + STOP_WAIT;
        while !thread.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            tracing::warn!(camera = %r.cfg.name, "camera still letting go of its stream; continuing without it");
        }
    }

    /// Starts a new camera; refused when one of that name runs.
    pub fn add(&self, cfg: CameraConfig) -> Result<(), VideoError> {
        let mut running = self.lock();
        if running.contains_key(&cfg.name) {
            return Err(VideoError::Exists(cfg.name));
        }
        let r = self.start(cfg)?;
        running.insert(r.cfg.name.clone(), r);
        Ok(())
    }

    /// Stops and forgets a camera. Blocks while its pipeline stops (at most a few seconds).
    pub fn remove(&self, name: &str) -> Result<(), VideoError> {
        let r = self
            .lock()
            .remove(name)
            .ok_or_else(|| VideoError::Unknown(name.to_string()))?;
        self.stop(r);
        tracing::info!(camera = %name, "camera removed");
        Ok(())
    }

    /// Gives a running camera new settings: restarted when they differ, untouched otherwise.
    pub fn update(&self, cfg: CameraConfig) -> Result<Change, VideoError> {
        let old = {
            let mut running = self.lock();
            match running.get(&cfg.name) {
                None => return Err(VideoError::Unknown(cfg.name)),
                Some(r) if r.cfg == cfg => return Ok(Change::Unchanged),
                Some(_) => running.remove(&cfg.name),
            }
        };
        if let Some(old) = old {
            self.stop(old);
        }
        let r = self.start(cfg)?;
        tracing::info!(camera = %r.cfg.name, url = %r.cfg.redacted_url(), "camera restarted with new settings");
        self.lock().insert(r.cfg.name.clone(), r);
        Ok(Change::Restarted)
    }

    /// Restarts a camera with its current settings (a technician's "reconnect now").
    pub fn restart(&self, name: &str) -> Result<(), VideoError> {
        let old = self
            .lock()
            .remove(name)
            .ok_or_else(|| VideoError::Unknown(name.to_string()))?;
        let cfg = old.cfg.clone();
        self.stop(old);
        let r = self.start(cfg)?;
        self.lock().insert(r.cfg.name.clone(), r);
        Ok(())
    }

    /// Makes the running set equal to `cfgs`: new names added, missing ones removed, changed
    /// ones restarted, the rest untouched (their streams do not blink).
    /// Disabled cameras count as absent.
    pub fn apply(&self, cfgs: &[CameraConfig]) -> Result<Vec<(String, Change)>, VideoError> {
        let cfgs: Vec<&CameraConfig> = cfgs.iter().filter(|c| c.enabled).collect();
        let plan = {
            let running = self.lock();
            let current = running.iter().map(|(n, r)| (n.as_str(), &r.cfg));
            reconcile::plan(current, &cfgs, |c| c.name.as_str())
        };
        let mut report = Vec::new();
        for name in plan.removed {
            self.remove(&name)?;
            report.push((name, Change::Removed));
        }
        for (cfg, change) in plan.wanted {
            match change {
                Change::Added => self.add(cfg.clone())?,
                Change::Restarted => {
                    self.update(cfg.clone())?;
                }
                Change::Unchanged | Change::Removed => {}
            }
            report.push((cfg.name.clone(), change));
        }
        Ok(report)
    }

    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The status objects of the running cameras (the service supervisor reads these).
    pub fn statuses(&self) -> Vec<Arc<CameraStatus>> {
        self.lock().values().map(|r| r.status.clone()).collect()
    }

    pub fn snapshot(&self, name: &str) -> Option<CameraSnapshot> {
        let status = self.lock().get(name).map(|r| r.status.clone())?;
        Some(super::status::with_hand_off(
            status.snapshot(),
            self.frames.stats(name),
        ))
    }

    /// Every camera's status, by name.
    pub fn snapshots(&self) -> Vec<CameraSnapshot> {
        self.statuses()
            .iter()
            .map(|s| super::status::with_hand_off(s.snapshot(), self.frames.stats(&s.name)))
            .collect()
    }

    /// The newest frame of a camera, for a snapshot on demand (encode with
    /// `evidence::frame_jpeg`).
    pub fn latest_frame(&self, name: &str) -> Result<Frame, VideoError> {
        let status = self
            .lock()
            .get(name)
            .map(|r| r.status.clone())
            .ok_or_else(|| VideoError::Unknown(name.to_string()))?;
        status
            .latest_frame()
            .ok_or_else(|| VideoError::NoFrame(name.to_string()))
    }

    /// Stops every camera (daemon shutdown); their final status stays readable.
    pub fn stop_all(&self) {
        self.parent.cancel();
        // Out of the map while joining, so status readers are not blocked meanwhile.
        let mut all = std::mem::take(&mut *self.lock());
        for r in all.values_mut() {
            Self::halt(r);
        }
        self.lock().append(&mut all);
    }
}
