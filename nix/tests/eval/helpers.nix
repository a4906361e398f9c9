# What the evaluation tests read configurations with.
{ lib }:

rec {
  # String tests on text that names store paths: Nix before 2.12 refuses to match a
  # regular expression against a string with context (and tryEval cannot catch that).
  plain = builtins.unsafeDiscardStringContext;
  contains = needle: text: lib.hasInfix (plain needle) (plain text);
  startsWith = prefix: text: lib.hasPrefix (plain prefix) (plain text);
  matches = regex: text: builtins.match regex (plain text) != null;

  # A store path's prefix, as a regular expression.
  store = "/nix/store/[0-9a-z]{32}";

  # A value as data that can be compared and printed: derivations by store path, functions
  # as a placeholder, and of a disabled entry (`enable = false`, such as an
  # environment.etc file WSL owns) only that, as nixpkgs reads nothing else of it. Forces
  # everything it returns.
  renderWith = skipDisabled: value:
    if lib.isDerivation value then value.outPath
    else if builtins.isFunction value then "<function>"
    else if skipDisabled && builtins.isAttrs value && (value.enable or null) == false then { enable = false; }
    else if builtins.isAttrs value then lib.mapAttrs (_: renderWith skipDisabled) value
    else if builtins.isList value then map (renderWith skipDisabled) value
    else value;
  render = renderWith true;

  # True once `value` is evaluated completely (anything that throws fails the test).
  forced = value: builtins.deepSeq (render value) true;
  # The same without skipping disabled entries: every value, even of what is off.
  forcedAll = value: builtins.deepSeq (renderWith false value) true;

  # Login name -> the shell field update-users-groups.pl writes to /etc/passwd.
  passwdShells = config:
    let spec = builtins.fromJSON (builtins.unsafeDiscardStringContext config.system.build.usersGroupsSpec.text); in
    lib.listToAttrs (map (user: lib.nameValuePair user.name user.shell) spec.users);

  # INI text -> { section = { key = "value"; }; }, as WSL reads /etc/wsl.conf; a key that
  # appears twice makes the test fail (WSL would use the first, the module must not
  # write two).
  iniSections = text:
    let
      lines = lib.filter (line: line != "" && !lib.hasPrefix "#" line) (lib.splitString "\n" text);
      step = state: line:
        let section = builtins.match "\\[(.*)]" line; pair = builtins.match "([^=]*)=(.*)" line; in
        if section != null then state // { current = lib.head section; }
        else if pair != null then
          let key = lib.head pair; in
          if (state.sections.${state.current} or { }) ? ${key} then throw "duplicate key ${state.current}.${key}"
          else state // {
            sections = state.sections // {
              ${state.current} = (state.sections.${state.current} or { }) // { ${key} = lib.elemAt pair 1; };
            };
          }
        else throw "not an INI line: ${line}";
    in
    (lib.foldl' step { current = ""; sections = { }; } lines).sections;
}
