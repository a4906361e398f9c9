# The Windows GPU driver for NixOS programs (CUDA, nvidia-smi, Mesa's d3d12 driver for WSLg).
#
# WSL mounts the user-space half of the Windows driver at /usr/lib/wsl/lib (libcuda.so.1,
# libd3d12.so, libdxcore.so, libnvidia-ml.so.1, nvidia-smi, ...) and gives the distribution
# /dev/dxg. Other distributions find the libraries through ld.so.conf.d; NixOS programs look
# in /run/opengl-driver/lib only (addDriverRunpath, libglvnd), which NixOS links to a
# buildEnv of hardware.graphics.package and hardware.graphics.extraPackages
# (nixos/modules/hardware/graphics.nix). So this adds a package of links to the WSL files
# to hardware.graphics.extraPackages: no LD_LIBRARY_PATH.
#
# The links are made by name at build time and point outside the store: a name the machine's
# driver does not ship is a dangling link, which the loader skips like a missing file. The
# files themselves change with every Windows driver update and are never copied.
{ config, lib, pkgs, ... }:

let
  cfg = config.wsl;
  dir = "/usr/lib/wsl/lib";
  names = lib.unique (knownLibraries ++ cfg.windowsDriver.extraLibraries);

  # What the NVIDIA, AMD, Intel and Microsoft (D3D12, DXCore) drivers put there (NVIDIA's
  # CUDA on WSL user guide; the contents of /usr/lib/wsl/lib with current drivers).
  knownLibraries = [
    "libcuda.so"
    "libcuda.so.1"
    "libcuda.so.1.1"
    "libcudadebugger.so.1"
    "libd3d12.so"
    "libd3d12core.so"
    "libdxcore.so"
    "libnvcuvid.so"
    "libnvcuvid.so.1"
    "libnvdxdlkernels.so"
    "libnvidia-encode.so"
    "libnvidia-encode.so.1"
    "libnvidia-ml.so.1"
    "libnvidia-opticalflow.so"
    "libnvidia-opticalflow.so.1"
    "libnvoptix.so.1"
    "libnvwgf2umx.so"
    "nvcubins.bin"
  ];

  links = pkgs.runCommand "wsl-windows-driver" { inherit names; } ''
    mkdir -p "$out/lib" "$out/bin"
    for name in $names; do
      ln -s ${dir}/"$name" "$out/lib/$name"
    done
    ln -s ${dir}/nvidia-smi "$out/bin/nvidia-smi"
  '';
in
{
  options.wsl = {
    useWindowsDriver = lib.mkEnableOption ''
      the Windows GPU driver's libraries from {file}`/usr/lib/wsl/lib` in
      {file}`/run/opengl-driver/lib`, where CUDA programs, {command}`nvidia-smi` and Mesa's
      d3d12 driver look for them (through {option}`hardware.graphics.extraPackages`)
    '';

    windowsDriver.extraLibraries = lib.mkOption {
      type = lib.types.listOf (lib.types.strMatching "[^/]+");
      default = [ ];
      example = [ "libnvidia-ngx.so.1" ];
      description = ''
        More file names from {file}`/usr/lib/wsl/lib` to link into
        {file}`/run/opengl-driver/lib`, for a driver that ships a library the module does not
        know yet. The module already links libcuda, libcudadebugger, libd3d12, libd3d12core,
        libdxcore, libnvcuvid, libnvdxdlkernels, libnvidia-encode, libnvidia-ml,
        libnvidia-opticalflow, libnvoptix, libnvwgf2umx and nvcubins.bin (the
        {option}`wsl.windowsDriver.package` lists them).
      '';
    };

    windowsDriver.package = lib.mkOption {
      type = lib.types.package;
      readOnly = true;
      default = links;
      defaultText = lib.literalMD "links to the driver's files in {file}`/usr/lib/wsl/lib`";
      description = ''
        The package of links that {option}`wsl.useWindowsDriver` adds to
        {option}`hardware.graphics.extraPackages` and to the system profile (for
        {command}`nvidia-smi`).
      '';
    };
  };

  config = lib.mkIf (cfg.enable && cfg.useWindowsDriver) {
    hardware.graphics.enable = true;
    hardware.graphics.extraPackages = [ links ];
    environment.systemPackages = [ links ];
  };
}
