//! Where tensors live: a GPU through wgpu (WebGPU in a browser; Vulkan, Metal or DX12
//! natively) or the CPU through burn's pure-Rust `flex` backend. Every device returned here
//! has autodiff enabled, because the product's work is a gradient with respect to pixels.

use burn::tensor::Device;
use serde::Serialize;

use crate::{Error, Result};

/// Which kind of backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// wgpu: WebGPU in the browser, the native graphics API elsewhere.
    Gpu,
    /// burn-flex on the CPU: slow, but needs no graphics driver at all.
    Cpu,
}

impl std::str::FromStr for BackendKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gpu" | "wgpu" | "webgpu" => Ok(Self::Gpu),
            "cpu" | "flex" => Ok(Self::Cpu),
            other => Err(Error::Invalid(format!(
                "unknown backend '{other}': use 'gpu' (wgpu) or 'cpu' (flex)"
            ))),
        }
    }
}

/// What the device is, for the person looking at the result.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub backend: BackendKind,
    /// Adapter name as the driver reports it (browsers may leave it empty).
    pub adapter: String,
    /// Graphics API underneath (`BrowserWebGpu`, `Vulkan`, ...) or `cpu`.
    pub api: String,
    pub driver: String,
    /// Whether the adapter renders in software on the CPU (a fallback adapter, llvmpipe,
    /// lavapipe, SwiftShader, WARP): wgpu through it is far slower than burn-flex on the same
    /// CPU (docs/performance.md: 4.8 s against 0.58 s a Shapes step at 64 views).
    pub software: bool,
    /// Whether the adapter does not say what it is (a virtual GPU, a device type of "other"):
    /// it may be slower than the CPU engine or far faster; only timing a step tells.
    pub unclear: bool,
}

/// A device ready for tensors, with autodiff enabled.
#[derive(Debug, Clone)]
pub struct Compute {
    pub device: Device,
    pub info: DeviceInfo,
}

/// Opens the device of the given kind. The GPU runtime can be initialised only once per
/// process, so later calls get a handle to the same device.
pub async fn open(kind: BackendKind) -> Result<Compute> {
    match kind {
        BackendKind::Cpu => Ok(Compute {
            device: Device::flex().autodiff(),
            info: DeviceInfo {
                backend: BackendKind::Cpu,
                adapter: "burn-flex (CPU)".into(),
                api: "cpu".into(),
                driver: String::new(),
                software: false,
                unclear: false,
            },
        }),
        BackendKind::Gpu => gpu::open().await,
    }
}

fn gpu_info(setup: &burn::tensor::wgpu::WgpuSetup) -> DeviceInfo {
    let info = setup.adapter.get_info();
    let named = |name: &str| ["llvmpipe", "lavapipe", "swiftshader", "microsoft basic render"].iter().any(|s| name.to_lowercase().contains(s));
    use burn::tensor::wgpu::wgpu::DeviceType;
    let software = info.device_type == DeviceType::Cpu || named(&info.name) || named(&info.driver);
    DeviceInfo {
        software,
        unclear: !software && matches!(info.device_type, DeviceType::Other | DeviceType::VirtualGpu),
        backend: BackendKind::Gpu,
        adapter: info.name,
        api: format!("{:?}", info.backend),
        driver: [info.driver, info.driver_info]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(not(target_family = "wasm"))]
mod gpu {
    use std::sync::Mutex;

    use super::*;

    static GPU: Mutex<Option<Compute>> = Mutex::new(None);

    pub async fn open() -> Result<Compute> {
        // Held across the (synchronous) initialisation so that concurrent callers, such as
        // tests in one process, share one runtime instead of racing to create two.
        let mut slot = GPU.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(compute) = slot.as_ref() {
            return Ok(compute.clone());
        }
        let (device, setup) = Device::wgpu_options()
            .init_with_setup()
            .map_err(|e| Error::NoDevice(format!("no usable GPU adapter through wgpu: {e}")))?;
        let compute = Compute {
            device: device.autodiff(),
            info: gpu_info(&setup),
        };
        *slot = Some(compute.clone());
        Ok(compute)
    }
}

#[cfg(target_family = "wasm")]
mod gpu {
    use std::cell::RefCell;

    use super::*;

    thread_local! {
        static GPU: RefCell<Option<Compute>> = const { RefCell::new(None) };
    }

    pub async fn open() -> Result<Compute> {
        if let Some(compute) = GPU.with_borrow(|slot| slot.clone()) {
            return Ok(compute);
        }
        let (device, setup) = Device::wgpu_options()
            .init_with_setup_async()
            .await
            .map_err(|e| Error::NoDevice(format!("WebGPU could not be initialised: {e}")))?;
        let compute = Compute {
            device: device.autodiff(),
            info: gpu_info(&setup),
        };
        GPU.with_borrow_mut(|slot| *slot = Some(compute.clone()));
        Ok(compute)
    }
}
