//! `notify.TmplText`: render many fields, remember the first error (which fails the
//! notification, not retried, as in Alertmanager).

use super::SinkError;
use crate::payload::Message;
use crate::render::Renderer;

pub struct Tmpl<'a> {
    renderer: &'a Renderer,
    msg: &'a Message,
    err: Option<String>,
}

impl<'a> Tmpl<'a> {
    pub fn new(renderer: &'a Renderer, msg: &'a Message) -> Self {
        Tmpl {
            renderer,
            msg,
            err: None,
        }
    }
    /// The rendered text ("" after an error, which is kept for [`Tmpl::finish`]).
    pub fn t(&mut self, src: &str) -> String {
        if self.err.is_some() || src.is_empty() {
            return String::new();
        }
        match self.renderer.render(src, self.msg) {
            Ok(s) => s,
            Err(e) => {
                self.err = Some(e);
                String::new()
            }
        }
    }
    /// The first template error, as a permanent failure naming the integration.
    pub fn finish(&self, what: &str) -> Result<(), SinkError> {
        match &self.err {
            None => Ok(()),
            Some(e) => Err(SinkError::permanent(format!("{what}: template: {e}"))),
        }
    }
}
