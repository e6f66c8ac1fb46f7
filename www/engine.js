// The worker client: the page's one way to the engine (worker.js). It knows the worker's
// messages and nothing of the page.

/**
 * A worker running the engine; `call(message)` resolves with the answer carrying the same id,
 * or rejects with an Error whose `kind` (and, for a file at fault, `path`) the engine gave.
 */
export function createEngine() {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  const pending = new Map();
  let next = 1;
  worker.onmessage = ({ data }) => {
    const { resolve, reject } = pending.get(data.id);
    pending.delete(data.id);
    if (data.error) reject(Object.assign(new Error(data.error), { kind: data.kind, path: data.path }));
    else resolve(data);
  };
  worker.onerror = (event) => {
    const error = Object.assign(new Error(`the engine stopped: ${event.message}`), { kind: 'fatal' });
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };
  let ended = null;
  return {
    call(message, transfer = []) {
      if (ended) return Promise.reject(ended);
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, ...message }, transfer);
      });
    },
    /** Ends the worker, whatever it is doing; every call waiting, and every later one, is
     * rejected with an Error of kind 'ended'. */
    terminate() {
      worker.terminate();
      ended = Object.assign(new Error('the engine was ended'), { kind: 'ended' });
      for (const { reject } of pending.values()) reject(ended);
      pending.clear();
    },
  };
}

/**
 * What the WebGPU adapter is, when it renders in software on the CPU (a fallback adapter,
 * SwiftShader, llvmpipe, lavapipe): WebGPU through it is far slower than the CPU engine on
 * the same processor (docs/performance.md). Null for a hardware adapter, or none.
 */
export async function softwareAdapter() {
  const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
  if (!adapter) return null;
  const info = adapter.info ?? {};
  const named = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  if (adapter.isFallbackAdapter || info.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe/i.test(named)) {
    return named || 'a fallback adapter';
  }
  return null;
}

/**
 * Whether the WebGPU adapter does not say what it is (a browser may withhold every name):
 * it may be slower than the CPU engine or far faster, and only timing a step tells.
 */
export async function adapterUnclear() {
  const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
  if (!adapter) return false;
  const info = adapter.info ?? {};
  return ![info.vendor, info.architecture, info.device, info.description].some(Boolean);
}

/** Why WebGPU is unusable here, or null when an adapter is granted. */
export async function webgpuProblem() {
  if (!('gpu' in navigator)) {
    return 'This browser does not offer WebGPU. It is available in Chrome and Edge 113 or later, ' +
      'Safari 26 or later and Firefox 141 or later on Windows; on Linux, Chrome needs the flag ' +
      'chrome://flags/#enable-unsafe-webgpu.';
  }
  let adapter;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch (error) {
    return `WebGPU is present but asking it for a GPU failed (${error.message}).`;
  }
  if (!adapter) {
    return 'WebGPU is present but no GPU adapter was granted (the GPU may be blocklisted, or ' +
      'hardware acceleration is turned off in the browser settings).';
  }
  return null;
}
