//! The integration tests, one crate so that the suite links tract and GStreamer once. Each
//! module is one subject; `common` holds the helpers they share. Run one subject with
//! `cargo nextest run -E 'test(/^gateway::/)'` (nextest runs every test in its own process).

mod common;
mod config_errors;
mod console;
mod crash_cycles;
mod delivery_faults;
mod detect_oracle;
mod end_to_end;
mod fuzz_corpus;
mod gateway;
mod int8;
mod lines_on_clip;
mod model_switch;
mod motion_gate;
mod mqtt;
mod outbox_faults;
mod packaging;
mod people_sinks;
mod restart;
mod rooms;
mod rules_on_clip;
mod service;
mod store_and_forward;
mod video_ingest;
