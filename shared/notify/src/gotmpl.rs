//! Glue to `argus-template` (Go text/template with Alertmanager's data model).

use crate::payload::Message;

/// Renders `src` (with the `templates:` definitions) over the notification data.
pub fn render(_definitions: &[String], _src: &str, _msg: &Message) -> Result<String, String> {
    Err("Go template actions are not supported yet (argus-template has not landed)".into())
}
