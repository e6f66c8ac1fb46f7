//! The wasm-bindgen surface, and nothing else: JavaScript calls in, results go out as plain
//! objects and typed arrays. The engine behind it knows nothing of the browser.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::engine::Model;
use crate::generate::{Generator, Patch, Settings};
use serde::Serialize as _;
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

/// A JavaScript `Error` with the message, and the fields a caller acts on: `kind` (see
/// `ErrorKind::name`) and, for a file at fault, `path`.
fn to_js(error: crate::Error) -> JsValue {
    let value: JsValue = JsError::new(&error.to_string()).into();
    let _ = js_sys::Reflect::set(&value, &"kind".into(), &error.kind().name().into());
    if let Some(path) = error.path() {
        let _ = js_sys::Reflect::set(&value, &"path".into(), &path.into());
    }
    value
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

/// Bytes of the engine's WebAssembly memory (it grows, never shrinks): what loading a model
/// costs the page beyond the GPU's own buffers.
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes() -> f64 {
    use wasm_bindgen::JsCast;
    wasm_bindgen::memory().unchecked_into::<js_sys::WebAssembly::Memory>().buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64
}

/// An animated GIF of frames given as consecutive `width` x `height` RGBA images.
#[wasm_bindgen(js_name = encodeGif)]
pub fn encode_gif(frames: Vec<u8>, width: usize, height: usize, delay_ms: u32) -> Result<Vec<u8>, JsValue> {
    let frame_bytes = 4 * width * height;
    if frame_bytes == 0 || frames.len() % frame_bytes != 0 {
        return Err(to_js(crate::Error::Invalid("the frames are not whole RGBA images of that size".into())));
    }
    let frames = frames
        .chunks_exact(frame_bytes)
        .map(|rgba| Pixels::from_rgba(height, width, rgba))
        .collect::<crate::Result<Vec<_>>>()
        .map_err(to_js)?;
    Pixels::gif(&frames, delay_ms).map_err(to_js)
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
        Settings::check_recommendation(files.manifest.recommended.as_ref()).map_err(to_js)?;
        let compute = device::open(kind).await.map_err(to_js)?;
        let model = Model::load(&files, &compute.device).map_err(to_js)?;
        Ok(WebModel { model: Rc::new(model), device: compute.info })
    }

    /// A model of the architecture `config` (a manifest's `config` as JSON) with random
    /// weights, for the benchmark: a full-size ViT-B/32 costs a step what the real one does,
    /// without a 154 MB download.
    pub async fn random(config: String, tokenizer: Vec<u8>, backend: String) -> Result<WebModel, JsValue> {
        let kind: device::BackendKind = backend.parse().map_err(to_js)?;
        let config: crate::model::ClipConfig =
            serde_json::from_str(&config).map_err(|e| to_js(crate::Error::Invalid(format!("not a model configuration: {e}"))))?;
        let compute = device::open(kind).await.map_err(to_js)?;
        let model = Model::random(&config, &tokenizer, &compute.device, 1).map_err(to_js)?;
        Ok(WebModel { model: Rc::new(model), device: compute.info })
    }

    /// Times the generation step at `views` views (see `bench::measure`); resolves to
    /// `{ views, seconds_per_step, steps_per_second, views_per_second, waiting_for_device_seconds }`.
    pub fn bench(&self, views: usize, warmup: usize, steps: usize) -> Promise {
        let model = self.model.clone();
        future_to_promise(async move {
            let figures = crate::bench::measure(&model, views, warmup, steps).await.map_err(to_js)?;
            Ok(serde_wasm_bindgen::to_value(&figures)?)
        })
    }

    /// The manifest: `{ name, license, source, quantization, config, files }`.
    #[wasm_bindgen(getter)]
    pub fn manifest(&self) -> Result<JsValue, JsValue> {
        Ok(self.model.manifest.serialize(&serde_wasm_bindgen::Serializer::json_compatible())?)
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

    /// What a person should know about how the model reads a prompt, one sentence each
    /// (words it does not know, a tail past its context); empty when it reads all of it.
    #[wasm_bindgen(js_name = promptNotes)]
    pub fn prompt_notes(&self, text: &str) -> Result<Vec<String>, JsValue> {
        Ok(self.model.tokenizer.notes(&self.model.tokenize(text).map_err(to_js)?))
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

    /// Explains a picture (its encoded bytes) with `captions` (an array of strings; empty:
    /// the model's own words): resolves to `{ size, readings: [{ caption, cosine,
    /// probability, saliency }] }`, most probable first, each saliency a Float32Array of
    /// `size * size` values in [0, 1].
    pub fn explain(&self, image: Vec<u8>, captions: JsValue) -> Promise {
        let model = self.model.clone();
        future_to_promise(async move {
            let captions: Vec<String> = serde_wasm_bindgen::from_value(captions)
                .map_err(|e| to_js(crate::Error::Invalid(format!("the captions must be a list of texts: {e}"))))?;
            let picture = Pixels::decode(&image).map_err(to_js)?;
            let captions = if captions.is_empty() { crate::explain::vocabulary(&model).map_err(to_js)? } else { captions };
            let readings = crate::explain::explain(&model, &picture, &captions).await.map_err(to_js)?;
            let list = js_sys::Array::new();
            for reading in readings {
                let item = js_sys::Object::new();
                js_sys::Reflect::set(&item, &"caption".into(), &reading.caption.into())?;
                js_sys::Reflect::set(&item, &"cosine".into(), &reading.cosine.into())?;
                js_sys::Reflect::set(&item, &"probability".into(), &reading.probability.into())?;
                js_sys::Reflect::set(&item, &"saliency".into(), &js_sys::Float32Array::from(&reading.saliency[..]).into())?;
                list.push(&item);
            }
            let out = js_sys::Object::new();
            js_sys::Reflect::set(&out, &"size".into(), &model.image_size().into())?;
            js_sys::Reflect::set(&out, &"readings".into(), &list)?;
            Ok(out.into())
        })
    }

    /// Starts a generation (the embedding of the prompts and the choice of the initial
    /// canvas happen here); resolves to a `Generator`. `request` is an object of settings by
    /// their names (`Settings`' serde: `{ prompt, negative?, steps?, seed?, size?, views?,
    /// patchViews?, lr?, ... }`, docs/generation.md lists them); `startImage` the bytes of a
    /// picture to start from; `imagePrompt` those of a picture to paint toward, at
    /// `imageWeight` (1 if none). Missing settings take the model's recommended values (its
    /// manifest's `recommended`), else the paper's. Invalid ones reject before any work.
    pub fn generator(&self, request: JsValue, start_image: Option<Vec<u8>>, image_prompt: Option<Vec<u8>>, image_weight: Option<f32>) -> Promise {
        let model = self.model.clone();
        future_to_promise(async move {
            let request: Patch = serde_wasm_bindgen::from_value(request)
                .map_err(|e| to_js(crate::Error::Invalid(format!("generation settings: {e}"))))?;
            let mut settings = Settings::for_model(&model.manifest).and_then(|s| s.patched(&request)).map_err(to_js)?;
            if let Some(bytes) = start_image {
                settings.canvas.start = Some(Pixels::decode(&bytes).map_err(to_js)?);
            }
            if let Some(bytes) = image_prompt {
                let picture = Pixels::decode(&bytes).map_err(|e| to_js(crate::Error::Invalid(format!("the image prompt: {e}"))))?;
                settings.objective.image_prompts.push(crate::generate::ImagePrompt { picture, weight: image_weight.unwrap_or(1.0) });
            }
            settings.validate().map_err(to_js)?;
            let generator = Generator::new(model, settings).await.map_err(to_js)?;
            Ok(WebGenerator { inner: Rc::new(RefCell::new(generator)) }.into())
        })
    }
}

/// The settings, by name, that a generation with the model of `manifest` takes where the
/// page sends nothing, so that the page can show them before the model is downloaded.
#[wasm_bindgen(js_name = defaultSettings)]
pub fn default_settings(manifest: String) -> Result<JsValue, JsValue> {
    let manifest = crate::weights::Manifest::parse(&manifest).map_err(to_js)?;
    let settings = Settings::for_model(&manifest).map_err(to_js)?;
    // As JSON numbers and objects (a plain JavaScript object, not a Map).
    let json = serde_json::to_value(&settings).map_err(|e| to_js(crate::Error::Internal(e.to_string())))?;
    Ok(json.serialize(&serde_wasm_bindgen::Serializer::json_compatible())?)
}

/// A generation in progress. The page calls `step()` repeatedly (pausing is not calling it;
/// stopping is dropping the object); each call does one optimisation step and resolves to
/// `{ report, rgba }`: the step's scores and the canvas as RGBA bytes for an ImageData.
#[wasm_bindgen(js_name = Generator)]
pub struct WebGenerator {
    inner: Rc<RefCell<Generator>>,
}

#[wasm_bindgen(js_class = Generator)]
impl WebGenerator {
    pub fn step(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            // One step at a time: a second call while one runs is refused, not queued.
            let mut generator = inner
                .try_borrow_mut()
                .map_err(|_| to_js(crate::Error::Invalid("a step is already running; wait for it before the next".into())))?;
            let report = generator.step().await.map_err(to_js)?;
            let out = js_sys::Object::new();
            js_sys::Reflect::set(&out, &"report".into(), &serde_wasm_bindgen::to_value(&report)?)?;
            js_sys::Reflect::set(&out, &"rgba".into(), &js_sys::Uint8ClampedArray::from(&generator.current().to_rgba()[..]).into())?;
            Ok(out.into())
        })
    }

    /// Steers the run from the next step on: `request` holds the new `prompt` and/or
    /// `negative` (with weights, as `generator` takes them; nothing else may change).
    /// Resolves to the current canvas's score for the new prompts.
    pub fn steer(&self, request: JsValue) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let patch: Patch = serde_wasm_bindgen::from_value(request)
                .map_err(|e| to_js(crate::Error::Invalid(format!("steering: {e}"))))?;
            let mut generator = inner
                .try_borrow_mut()
                .map_err(|_| to_js(crate::Error::Invalid("a step is running; steer between steps".into())))?;
            generator.steer(&patch).await.map_err(to_js)?;
            Ok(generator.current_score().into())
        })
    }

    /// Side of the canvas in pixels.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> Result<usize, JsValue> {
        Ok(self.borrow()?.size())
    }

    /// The canvas now, as RGBA bytes.
    #[wasm_bindgen(js_name = currentRgba)]
    pub fn current_rgba(&self) -> Result<js_sys::Uint8ClampedArray, JsValue> {
        Ok(js_sys::Uint8ClampedArray::from(&self.borrow()?.current().to_rgba()[..]))
    }

    /// The score of the canvas now.
    #[wasm_bindgen(getter, js_name = currentScore)]
    pub fn current_score(&self) -> Result<f32, JsValue> {
        Ok(self.borrow()?.current_score())
    }

    /// The picture so far (lowest global loss), as a PNG.
    #[wasm_bindgen(js_name = bestPng)]
    pub fn best_png(&self) -> Result<Vec<u8>, JsValue> {
        self.borrow()?.best().to_png().map_err(to_js)
    }

    /// Resolves to the picture so far as an SVG document when the canvas is made of strokes,
    /// else to `undefined`.
    #[wasm_bindgen(js_name = bestSvg)]
    pub fn best_svg(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let generator = inner.try_borrow().map_err(|_| to_js(crate::Error::Invalid("a step is running".into())))?;
            Ok(generator.best_svg().await.map_err(to_js)?.map_or(JsValue::UNDEFINED, |svg| svg.into()))
        })
    }

    fn borrow(&self) -> Result<std::cell::Ref<'_, Generator>, JsValue> {
        self.inner.try_borrow().map_err(|_| to_js(crate::Error::Invalid("a step is running".into())))
    }
}
