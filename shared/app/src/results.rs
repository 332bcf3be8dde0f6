//! Probe results rows and their run items live in `argus-status` (which also rolls them
//! up into hourly and daily uptime summaries and renders the status page); re-exported
//! here so the probe service and tests keep their paths.

pub use argus_status::results::*;
