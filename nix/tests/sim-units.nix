# What the simulator tests of the parity features (tests/e2e/features.rs) put into a distro,
# taken from the module as the real nixpkgs lib evaluates it (nix/tests/eval): one flat
# attribute set of strings, printed as JSON.
#
#   NIXOS_WSL_NIXPKGS_LIB=<nixpkgs>/lib nix-instantiate --eval --strict --json nix/tests/sim-units.nix
#
# Units are rendered from their evaluated options the way nixpkgs' systemd-lib writes them
# (one `Key=value` line per setting, lists as one line each); nothing nixpkgs' own modules
# add (PATH, Environment) is needed by these units. /run/opengl-driver is graphics.nix' rule
# with the driver environment reduced to the module's one package of links (a buildEnv of
# one package holds the same links).
let
  lib = import ./eval/lib.nix;
  evalConfig = import ./eval/eval-config.nix { inherit lib; };
  eval = extra: (evalConfig {
    modules = [
      ../modules
      {
        nixpkgs.hostPlatform = "x86_64-linux";
        system.stateVersion = "25.11";
        wsl.enable = true;
      }
      extra
    ];
  }).config;
  config = eval {
    wsl.useWindowsDriver = true;
    wsl.sshAgent.enable = true;
    wsl.keepAlive = true;
    wsl.usbip.enable = true;
    wsl.usbip.autoAttach = [ "4-1" ];
  };
  # wsl.keepAlive with a unit: held only while it is active.
  withUnit = eval { wsl.keepAlive = [ "work.service" ]; };

  value = v: if builtins.isBool v then lib.boolToString v else toString v;
  lines = key: v: lib.concatMapStrings (x: "${key}=${value x}\n") (lib.toList v);
  section = name: attrs: "[${name}]\n" + lib.concatStrings (lib.mapAttrsToList lines attrs);
  unit = u:
    section "Unit"
      ({ Description = u.description; }
      // lib.optionalAttrs (u.after != [ ]) { After = lib.concatStringsSep " " u.after; }
      // lib.optionalAttrs (u.bindsTo != [ ]) { BindsTo = lib.concatStringsSep " " u.bindsTo; }
      // u.unitConfig)
    + section "Service" u.serviceConfig;

  ssh = config.systemd.user.services.wsl2-ssh-agent;
  keepAlive = config.systemd.services.nixos-wsl-keep-alive;
  keepAliveWork = withUnit.systemd.services."nixos-wsl-keep-alive-work.service";
  gpu = config.wsl.windowsDriver.package;
  usbip = config.systemd.services."nixos-wsl-usbip-attach@";
in
builtins.mapAttrs (_: builtins.unsafeDiscardStringContext) {
  "gpu.out" = gpu.outPath;
  "gpu.names" = lib.concatStringsSep " " gpu.names;
  "gpu.build" = gpu.buildCommand;
  "gpu.tmpfiles" = "L+ /run/opengl-driver - - - - ${gpu}\n";
  "ssh.unit" = unit ssh;
  "ssh.wantedBy" = lib.concatStringsSep " " ssh.wantedBy;
  "ssh.extraInit" = config.environment.extraInit;
  "keep-alive.unit" = unit keepAlive;
  "keep-alive.wantedBy" = lib.concatStringsSep " " keepAlive.wantedBy;
  "keep-alive-work.unit" = unit keepAliveWork;
  "keep-alive-work.wantedBy" = lib.concatStringsSep " " keepAliveWork.wantedBy;
  # The job script as systemd-lib's makeJobScript writes it (`set -e`, then the script), run
  # with the unit's scriptArgs; the unit's Restart.
  "usbip.script" = "set -e\n" + usbip.script;
  "usbip.scriptArgs" = usbip.scriptArgs;
  "usbip.restart" = usbip.serviceConfig.Restart;
  "usbip.wants" = lib.concatStringsSep " " config.systemd.targets.multi-user.wants;
}
