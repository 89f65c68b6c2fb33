# Source this from the repository root to use the project's tools by hand:
#   source bin/env.sh
# It puts the project's venv (ape, silverback, mm-client, vyper) and npm's anvil on PATH and keeps
# Ape's and the Vyper manager's state inside the project, as every make target does.
# Run `make setup` first (it installs both).
_mm_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [[ ! -x "$_mm_root/.venv/bin/python" || ! -x "$_mm_root/node_modules/.bin/anvil" ]]; then
  echo "bin/env.sh: run \`make setup\` first (no .venv or node_modules in $_mm_root)" >&2
else
  export PATH="$_mm_root/.venv/bin:$_mm_root/node_modules/.bin:$_mm_root/bin:$PATH"
  export APE_DATA_FOLDER="$_mm_root/.ape"
  export VVM_BINARY_PATH="$_mm_root/.vvm"
  export SILVERBACK_PROFILE_DIR="$_mm_root/.silverback"
fi
unset _mm_root
