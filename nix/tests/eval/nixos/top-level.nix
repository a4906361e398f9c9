# nixos/modules/system/activation/{top-level,activation-script,bootspec,switchable-system}.nix,
# nixos/modules/system/build.nix, nixos/modules/system/boot/{kernel,stage-1,modprobe}.nix,
# loader/grub/grub.nix, tasks/filesystems.nix, virtualisation/nixos-containers.nix (boot.isContainer),
# config/system-path.nix (system.path): the options the WSL module sets or reads, with
# nixpkgs' types and defaults, and a toplevel whose inputs are what nixpkgs' builder links
# into the system: /etc, the system profile, the activation script, systemd, and the kernel,
# its modules and firmware, the initrd and the bootspec (boot.json names kernel and initrd)
# under the conditions top-level.nix and bootspec.nix put them in. Like nixpkgs'
# top-level.nix, building the toplevel fails while an assertion does not hold.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.boot;

  script = types.either types.str (types.submodule {
    options = {
      deps = mkOption { type = types.listOf types.str; default = [ ]; description = "Scripts that run first."; };
      text = mkOption { type = types.lines; description = "The script."; };
      supportsDryActivation = mkOption { type = types.bool; default = false; description = "Runs on dry activation."; };
    };
  });
  textOf = snippet: if builtins.isString snippet then snippet else snippet.text;
  activate = pkgs.writeText "activate" (lib.concatStrings (lib.mapAttrsToList
    (name: snippet: "#### ${name}\n${textOf snippet}\n")
    (removeAttrs config.system.activationScripts [ "script" ])));

  kernel = pkgs.linux;
  initrd = pkgs.runCommand "initrd-${kernel.name}" { inherit kernel; } "";
  firmware = pkgs.buildEnv { name = "firmware"; paths = config.hardware.firmware; };
  bootspec = pkgs.writeText "boot.json" (builtins.toJSON {
    kernel = "${kernel}/bzImage";
    initrd = if cfg.initrd.enable then "${initrd}/initrd" else null;
  });

  failed = map (assertion: assertion.message) (lib.filter (assertion: !assertion.assertion) config.assertions);
  system = pkgs.runCommand "nixos-system-${config.networking.hostName}-${config.system.nixos.release}"
    ({
      etc = config.system.build.etc;
      sw = config.system.path;
      inherit activate;
      systemd = config.systemd.package;
      installBootLoader = config.system.build.installBootLoader;
    }
    // lib.optionalAttrs cfg.kernel.enable { inherit kernel; kernelModules = kernel; }
    // lib.optionalAttrs cfg.initrd.enable { inherit initrd; }
    // lib.optionalAttrs (!cfg.isContainer && cfg.bootspec.enable) { inherit bootspec; }
    // lib.optionalAttrs (config.services.udev.enable && config.hardware.firmware != [ ]) { inherit firmware; })
    "";
in
{
  options = {
    boot = {
      isContainer = mkOption { type = types.bool; default = false; description = "A container (no kernel)."; };
      kernel.enable = lib.mkEnableOption "the Linux kernel" // { default = true; };
      initrd.enable = mkOption { type = types.bool; default = !cfg.isContainer; description = "The initrd."; };
      loader.grub.enable = mkOption { type = types.bool; default = !cfg.isContainer; description = "GRUB."; };
      modprobeConfig.enable = lib.mkEnableOption "modprobe config" // { default = true; };
      bootspec.enable = lib.mkEnableOption "the generation of RFC-0125 bootspec" // { default = true; internal = true; };
      # nixos/modules/system/boot/loader/grub/grub.nix
      loader.grub.device = mkOption { type = types.str; default = ""; description = "GRUB's boot device."; };
    };
    # nixos/modules/tasks/filesystems.nix (the two sub-options flake checks use)
    fileSystems = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options.device = mkOption { type = types.nullOr types.nonEmptyStr; default = null; description = "The device."; };
        options.fsType = mkOption { type = types.nonEmptyStr; default = "auto"; description = "The file system type."; };
      });
      description = "File systems.";
    };
    hardware.firmware = mkOption { type = types.listOf types.package; default = [ ]; description = "Firmware packages."; };

    system.build = mkOption {
      default = { };
      type = types.submoduleWith {
        modules = [{
          freeformType = types.lazyAttrsOf (types.uniq types.unspecified);
          options.toplevel = mkOption { type = types.package; readOnly = true; description = "The system."; };
          options.installBootLoader = mkOption {
            internal = true;
            type = types.unique { message = "Only one bootloader can be enabled at a time."; } (types.either types.str types.package);
            default = pkgs.writeText "no-bootloader" "echo 'Warning: do not know how to make this configuration bootable'";
            description = "Installs the boot loader.";
          };
        }];
      };
      description = "Derivations of the system.";
    };
    system.activationScripts = mkOption { default = { }; type = types.attrsOf script; description = "Activation snippets."; };
    system.path = mkOption { internal = true; description = "The system profile."; };
  };

  config.system.build.toplevel =
    if failed == [ ] then system
    else throw "Failed assertions:\n${lib.concatMapStrings (message: "- ${message}\n") failed}";
}
