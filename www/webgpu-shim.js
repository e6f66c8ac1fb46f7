// Keeps the engine's kernels within what every browser's WebGPU validates. Installed before
// the engine asks for a device.
//
// cubecl (burn's GPU compiler) emits subgroup operations in one of its matmul kernels
// whenever the adapter reports a subgroup size above 1, whether or not the device has the
// 'subgroups' feature, which wgpu (30) never requests in a browser; and where the feature is
// on, Chromium rejects that kernel's subgroup operation under non-uniform control flow. On
// wasm such a failure is not an error but a panic of the whole engine (cubecl issue 1641).
// Reporting a subgroup size of 1 makes cubecl choose kernels without subgroup operations.

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
  GPUAdapter.prototype.clipagShim = true;
}
