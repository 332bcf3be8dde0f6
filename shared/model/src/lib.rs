//! argus-model: the vocabulary every Argus crate shares.
//!
//! Pure data and ports (traits) only: no I/O happens in this crate. Time is always a
//! parameter (`Millis`, unix milliseconds), never read from the system clock here.

pub mod alert;
pub mod error;
pub mod go;
pub mod kv;
pub mod labels;
pub mod schema;
pub mod target;
pub mod time;

pub use alert::Alert;
pub use error::StoreError;
pub use kv::{Cond, Item, Kv};
pub use labels::{valid_label_name, valid_metric_name, Labels};
pub use schema::Table;
pub use target::Target;
pub use time::{Clock, Millis, SystemClock, UnixSecs};
