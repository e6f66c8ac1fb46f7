# Sourced by tools/gpu-bench.sh and tools/gpu-shapes.sh on the GPU machine: where NVIDIA's
# Vulkan and EGL drivers are, and `gpu_unpack`, which readies what `tools/gpu-bench.sh pack`
# put in gpu/ (../shared/docs/toolchain.md, GPU section; the device README).
NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$NVIDIA_ICD}
export __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}

# There (as root, on a machine given back after the session) the packed libraries go into /
# itself, as the device README says: in a private prefix wgpu found no adapter. Elsewhere (a
# try on lavapipe) this machine's own loader serves, and / is left alone.
gpu_unpack() {
  if [ -f "$NVIDIA_ICD" ]; then
    for deb in gpu/debs/*.deb; do dpkg -x "$deb" /; done
    ldconfig
  fi
  gunzip -kf gpu/clipag.gz && chmod +x gpu/clipag
}
