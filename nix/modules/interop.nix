# Running Windows programs from NixOS: the Windows part of PATH, and WSL's binfmt_misc
# entry for `.exe` files.
#
# WSL registers `WSLInterop` (magic `MZ`, interpreter /init, flags PF) in the kernel's
# binfmt_misc table, which is global to the VM and shared by every distribution. This
# module never replaces it by default. But when any boot.binfmt.registrations exist,
# NixOS starts systemd-binfmt, which flushes the whole table before registering its own
# entries, and `.exe` files stop running in every distribution until WSL restarts.
{ config, lib, ... }:

let
  cfg = config.wsl;
  registrations = builtins.removeAttrs config.boot.binfmt.registrations [ "WSLInterop" ];
in
{
  options.wsl.interop = {
    includePath = lib.mkOption {
      type = lib.types.bool;
      default = true;
      example = false;
      description = ''
        Whether NixOS shells search the Windows `%PATH%` too, after the NixOS entries.
        nixos-wsl-shell exports the Windows entries WSL passes as {env}`WSLPATH` and keeps
        them at the end of {env}`PATH` when this is on (`include_path` in
        {file}`/etc/nixos-wsl.conf`).
        Turning it off keeps shells from searching slow 9p drives, for example when
        completing command names.
      '';
    };

    register = lib.mkOption {
      type = lib.types.bool;
      default = false;
      example = true;
      description = ''
        Whether NixOS registers WSL's `WSLInterop` binfmt entry itself (interpreter
        {file}`/init`, preserving argv[0] as WSL 0.58 and later expect). Only needed
        together with other {option}`boot.binfmt.registrations` (for example
        {option}`boot.binfmt.emulatedSystems`): systemd-binfmt then flushes WSL's own
        entry, and this puts it back.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    boot.binfmt.registrations = lib.mkIf cfg.interop.register {
      WSLInterop = {
        magicOrExtension = "MZ";
        interpreter = "/init";
        # /init decides what to run from the path it was called with.
        preserveArgvZero = true;
        # Open /init when registering: it is not visible inside build sandboxes or
        # other mount namespaces.
        fixBinary = true;
        wrapInterpreterInShell = false;
      };
    };

    warnings =
      lib.optional (registrations != { } && !cfg.interop.register) ''
        boot.binfmt.registrations (${lib.concatStringsSep ", " (lib.attrNames registrations)})
        make systemd-binfmt flush WSL's WSLInterop entry, and Windows programs (.exe)
        stop running in every WSL distribution. Set wsl.interop.register = true; to
        register it again.
      ''
      ++ lib.optional (cfg.interop.includePath && !cfg.wslConf.interop.appendWindowsPath) ''
        wsl.interop.includePath has no effect: WSL does not pass the Windows PATH while
        wsl.wslConf.interop.appendWindowsPath is false. Set one of them consistently.
      '';
  };
}
