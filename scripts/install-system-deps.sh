#!/usr/bin/env bash
# Install the Debian packages listed in scripts/system-packages.txt that are missing.
# Needs root; without root it lists what is missing and leaves the root-only tests to skip.
# Services that packages would start on install are kept from starting (policy-rc.d), so the
# machine runs nothing it did not ask for.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
missing=()
while read -r probe pkg; do
  [[ -z "$probe" || "$probe" == \#* ]] && continue
  if [[ "$probe" == /* ]]; then [[ -e "$probe" ]] && continue
  else command -v "$probe" >/dev/null 2>&1 && continue
  fi
  missing+=("$pkg")
done < "$here/system-packages.txt"
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "not root: not installing ${missing[*]} (tests that need them will skip)" >&2
  exit 0
fi
echo "installing system packages: ${missing[*]}" >&2
made_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
fi
trap '[[ $made_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
