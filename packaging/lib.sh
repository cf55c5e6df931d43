# Shell helpers shared by packaging/test.sh and packaging/container/test.sh (sourced).
say() { printf '\033[1m== %s\033[0m\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# A Python tool at an exact version, in its own venv under ~/.cache/confab-tests/<name>
# (where tests find it with common::cached_tool); Debian's python3, reinstalled when the
# version differs.
pinned_tool() { # name version command
  local venv="${XDG_CACHE_HOME:-$HOME/.cache}/confab-tests/$1"
  if [ "$("$venv/bin/pip" show "$1" 2>/dev/null | sed -n 's/^Version: //p')" != "$2" ] || [ ! -x "$venv/bin/$3" ]; then
    say "installing $1 $2 into $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$1==$2"
  fi
}
