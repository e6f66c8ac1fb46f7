// Keeps the engine's kernels within what every browser's WebGPU validates. Installed before
// the engine asks for a device.
//
// cubecl (burn's GPU compiler) emits subgroup operations in one of its matmul kernels
// whenever the adapter reports a subgroup size above 1, whether or not the device has the
// 'subgroups' feature, which wgpu (30) never requests in a browser; and where the feature is
// on, Chromium rejects that kernel's subgroup operation under non-uniform control flow. On
// wasm such a failure is not an error but a panic of the whole engine (cubecl issue 1641).
// Reporting a subgroup size of 1 makes cubecl choose kernels without subgroup operations.
//
// It also watches each device the engine asks for: a device lost in the middle of a step
// (the browser took it back, the driver reset, `device.destroy()`) fails the step's
// read-back first, as a map error, and only then reports the loss; `deviceLoss` lets the
// worker tell the two apart.

const losses = [];
const lossHeard = [];

/**
 * Why a device the engine uses was lost, waiting up to `waitMs` for a loss to be reported;
 * null if none was.
 */
export function deviceLoss(waitMs = 0) {
  if (losses.length || !waitMs) return Promise.resolve(losses.at(-1) ?? null);
  return new Promise((resolve) => {
    const heard = (why) => {
      clearTimeout(timer);
      resolve(why);
    };
    const timer = setTimeout(() => {
      lossHeard.splice(lossHeard.indexOf(heard), 1);
      resolve(null);
    }, waitMs);
    lossHeard.push(heard);
  });
}

export function installWebGpuShim() {
  if (typeof GPUAdapter === 'undefined' || GPUAdapter.prototype.clipagShim) return;
  const info = Object.getOwnPropertyDescriptor(GPUAdapter.prototype, 'info');
  if (info?.get) {
    Object.defineProperty(GPUAdapter.prototype, 'info', {
      configurable: true,
      get() {
        return new Proxy(info.get.call(this), {
          get: (target, key) => (key === 'subgroupMinSize' || key === 'subgroupMaxSize' ? 1 : Reflect.get(target, key)),
        });
      },
    });
  }
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    device.lost.then((info) => {
      const why = info.message || `the device was ${info.reason ?? 'lost'}`;
      losses.push(why);
      for (const heard of lossHeard.splice(0)) heard(why);
    });
    return device;
  };
  GPUAdapter.prototype.clipagShim = true;
}
