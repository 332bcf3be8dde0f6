//! Go duration printing, as promtool's messages use it.

/// Prometheus' `model.Duration.String()` (one home: `argus_model::time`).
pub use argus_model::time::format_duration_ms as model_duration;
/// Go's `time.Duration.String()` (one home: `argus_model::time`).
pub use argus_model::time::format_go_duration_ms as go_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(model_duration(0), "0s");
        assert_eq!(model_duration(300_000), "5m");
        assert_eq!(model_duration(5_400_000), "1h30m");
        assert_eq!(model_duration(7 * 86_400_000), "1w");
        assert_eq!(model_duration(8 * 86_400_000), "8d");
        assert_eq!(model_duration(1500), "1s500ms");
        assert_eq!(go_duration(300_000), "5m0s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
        assert_eq!(go_duration(1500), "1.5s");
        assert_eq!(go_duration(500), "500ms");
        assert_eq!(go_duration(0), "0s");
    }
}
