//! Errors and panics at the boundary: every exported function returns
//! `[ERR_CODE] message` errors (which `ts/native.ts` turns into `error.code`)
//! and no panic ever unwinds into Node.

use napi::bindgen_prelude::*;
use st_core::CoreError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

pub fn coded(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("[{code}] {message}"))
}

pub fn to_js_error(e: CoreError) -> Error {
    coded(e.code(), short_message(&e.to_string()))
}

/// libtorch errors carry a C++ stack trace after the message; users need
/// the message only.
pub fn short_message(message: &str) -> String {
    let cut = message
        .find("\nException raised from")
        .or_else(|| message.find("Exception raised from"))
        .unwrap_or(message.len());
    message[..cut].trim_end().to_string()
}

pub fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    let raw = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    short_message(&raw)
}

/// The error a caught panic becomes.
pub fn panic_error(p: Box<dyn std::any::Any + Send>) -> Error {
    let msg = panic_message(p);
    let code = if st_core::error::is_allocation_failure(&msg) {
        "ERR_OUT_OF_MEMORY"
    } else {
        "ERR_PANIC"
    };
    coded(code, msg)
}

/// Every panic in this addon is caught and reported as an error, so the
/// default hook's stderr print would only duplicate it (set
/// ST_NATIVE_DEBUG_PANICS=1 to see them with their location).
pub fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("ST_NATIVE_DEBUG_PANICS").is_none() {
            std::panic::set_hook(Box::new(|_| {}));
        }
    });
}

/// Runs a synchronous export: a panic becomes an ERR_PANIC error.
pub fn sync<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    quiet_panics();
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panic_error(p)))
}

/// A JS number that must be an integer in `min..=max` (napi's own u32/i64
/// conversions wrap -1 to 4294967295 and NaN to 0: never use them for input).
pub fn int_arg(name: &str, value: f64, min: i64, max: i64) -> Result<i64> {
    if value.is_finite() && value.fract() == 0.0 && value >= min as f64 && value <= max as f64 {
        Ok(value as i64)
    } else {
        Err(coded(
            "ERR_INVALID_ARG",
            format!("{name}: expected an integer in [{min}, {max}], got {value}"),
        ))
    }
}
