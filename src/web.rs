//! The wasm-bindgen surface, and nothing else: JavaScript calls in, results go out as plain
//! objects and typed arrays. The engine behind it knows nothing of the browser.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::engine::Model;
use crate::pixels::Pixels;
use crate::weights::ModelFiles;
use crate::{check, device};

#[wasm_bindgen(start)]
fn start() {
    // A Rust panic becomes a readable console error instead of "unreachable executed", and
    // the engine's (and wgpu's) log records reach the console, where tests collect them.
    console_error_panic_hook::set_once();
    let _ = console_log::init_with_level(log::Level::Warn);
}

fn to_js(error: crate::Error) -> JsValue {
    JsError::new(&error.to_string()).into()
}

/// Opens the device (`"gpu"` for WebGPU, `"cpu"` for burn-flex) and runs the device check:
/// resolves to `{ device: { backend, adapter, api, driver }, loss, grad }`.
#[wasm_bindgen(js_name = deviceCheck)]
pub async fn device_check(backend: String) -> Result<JsValue, JsValue> {
    let kind: device::BackendKind = backend.parse().map_err(to_js)?;
    let compute = device::open(kind).await.map_err(to_js)?;
    let report = check::run(&compute.device, &compute.info).await.map_err(to_js)?;
    Ok(serde_wasm_bindgen::to_value(&report)?)
}

/// A CLIP loaded from a model folder's files, on one device.
#[wasm_bindgen(js_name = Model)]
pub struct WebModel {
    model: Rc<Model>,
    device: device::DeviceInfo,
}

#[wasm_bindgen(js_class = Model)]
impl WebModel {
    /// Verifies the files against the manifest (sizes and sha256) and builds the model on
    /// `"gpu"` or `"cpu"`. Rejects with a message naming what is wrong.
    pub async fn load(manifest: String, weights: Vec<u8>, tokenizer: Vec<u8>, backend: String) -> Result<WebModel, JsValue> {
        let kind: device::BackendKind = backend.parse().map_err(to_js)?;
        let files = ModelFiles::new(&manifest, weights, tokenizer).map_err(to_js)?;
        let compute = device::open(kind).await.map_err(to_js)?;
        let model = Model::load(&files, &compute.device).map_err(to_js)?;
        Ok(WebModel { model: Rc::new(model), device: compute.info })
    }

    /// The manifest: `{ name, license, source, quantization, config, files }`.
    #[wasm_bindgen(getter)]
    pub fn manifest(&self) -> Result<JsValue, JsValue> {
        Ok(serde_wasm_bindgen::to_value(&self.model.manifest)?)
    }

    /// `{ backend, adapter, api, driver }`.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> Result<JsValue, JsValue> {
        Ok(serde_wasm_bindgen::to_value(&self.device)?)
    }

    /// The side of the square images the model takes.
    #[wasm_bindgen(getter, js_name = imageSize)]
    pub fn image_size(&self) -> usize {
        self.model.image_size()
    }

    /// Token ids, start and end tokens included.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, JsValue> {
        Ok(self.model.tokenize(text).map_err(to_js)?.ids)
    }

    /// Resolves to the text embedding (before normalisation), a Float32Array.
    #[wasm_bindgen(js_name = embedText)]
    pub fn embed_text(&self, text: String) -> Promise {
        let model = self.model.clone();
        future_to_promise(async move {
            let embedding = model.embed_text(&text).await.map_err(to_js)?;
            Ok(js_sys::Float32Array::from(&embedding[..]).into())
        })
    }

    /// Resolves to the image embedding of `pixels` (RGB planes in [0, 1], `3 * size * size`
    /// values at the model's size).
    #[wasm_bindgen(js_name = embedImage)]
    pub fn embed_image(&self, pixels: Vec<f32>, size: usize) -> Promise {
        let model = self.model.clone();
        future_to_promise(async move {
            let image = Pixels::new(size, size, pixels).map_err(to_js)?;
            let embedding = model.embed_image(&image).await.map_err(to_js)?;
            Ok(js_sys::Float32Array::from(&embedding[..]).into())
        })
    }

    /// Resolves to `{ cosine, grad }`: cos(image, text) and its gradient with respect to the
    /// pixels (a Float32Array shaped like `pixels`).
    #[wasm_bindgen(js_name = pixelGradient)]
    pub fn pixel_gradient(&self, pixels: Vec<f32>, size: usize, text: String) -> Promise {
        let model = self.model.clone();
        future_to_promise(async move {
            let image = Pixels::new(size, size, pixels).map_err(to_js)?;
            let result = model.pixel_gradient(&image, &text).await.map_err(to_js)?;
            let out = js_sys::Object::new();
            js_sys::Reflect::set(&out, &"cosine".into(), &result.cosine.into())?;
            js_sys::Reflect::set(&out, &"grad".into(), &js_sys::Float32Array::from(&result.grad[..]).into())?;
            Ok(out.into())
        })
    }
}
