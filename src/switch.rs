//! Live switches: how the control room hands the running pipeline a new model or a new rule
//! set without reaching into the pipeline (or the wiring in `app`) itself.

use crate::config::Config;
use crate::detect::DetectorSpec;
use std::sync::mpsc;
use std::sync::Arc;

/// Hands a running pipeline something new (a model, a rule set) from another thread: the
/// pipeline takes the receiving end once, when it starts.
pub struct Switch<T> {
    tx: mpsc::Sender<T>,
    rx: Arc<parking_lot::Mutex<Option<mpsc::Receiver<T>>>>,
}

impl<T> Clone for Switch<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            rx: self.rx.clone(),
        }
    }
}

impl<T> Switch<T> {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            tx,
            rx: Arc::new(parking_lot::Mutex::new(Some(rx))),
        }
    }

    /// Returns false when no pipeline is listening any more.
    pub fn request(&self, value: T) -> bool {
        self.tx.send(value).is_ok()
    }

    /// The pipeline's end: the first caller gets it, every later one `None`.
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<T>> {
        self.rx.lock().take()
    }
}

impl<T> Default for Switch<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Asks a running pipeline to change its model. The new model loads beside the old one, which
/// keeps detecting until the swap; cameras are not touched (frames of the old size are
/// resized for the new model until a camera reconnects).
pub type ModelSwitch = Switch<DetectorSpec>;

/// Gives the detector new rules, zones and tracker settings (and the cameras they apply to):
/// the rule engine is rebuilt between two frames; tracks start afresh.
pub type RulesSwitch = Switch<Config>;
