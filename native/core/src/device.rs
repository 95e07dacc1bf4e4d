//! Device choice. The core never assumes CPU: every tensor is created on the
//! device chosen here.

use crate::config::DeviceChoice;
use crate::error::{CoreError, Result};
use tch::Device;

pub fn resolve(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cuda => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err(CoreError::Device(
                    "device \"cuda\" was requested but libtorch sees no CUDA device (use \"auto\" or \"cpu\")".into(),
                ))
            }
        }
    }
}

pub fn describe(device: Device) -> String {
    match device {
        Device::Cpu => match tch::get_num_threads() {
            1 => "cpu (1 thread)".to_string(),
            n => format!("cpu ({n} threads)"),
        },
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

/// The version of the libtorch this build linked against, as its folder
/// states it (e.g. "2.11.0+cu130"), read at build time.
pub fn libtorch_version() -> &'static str {
    env!("ST_LIBTORCH_VERSION")
}
