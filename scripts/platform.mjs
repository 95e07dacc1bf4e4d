// The platform this build targets, in napi-rs's naming (the suffix of the
// `.node` files and of the platform package: st-native-linux-x64-gnu).
// Linux with glibc only: libtorch's PyPI wheels are built for it.
const archs = { x64: 'x64', arm64: 'arm64' };

function suffix() {
  const arch = archs[process.arch];
  if (process.platform !== 'linux' || !arch) {
    throw new Error(`st-native builds for Linux x64/arm64 (glibc) only, not ${process.platform}-${process.arch}`);
  }
  return `linux-${arch}-gnu`;
}

export const platform = suffix();
export const addonFile = `st-native.${platform}.node`;
export const preloadFile = `st-native-preload.${platform}.node`;
export const platformPackage = `st-native-${platform}`;
