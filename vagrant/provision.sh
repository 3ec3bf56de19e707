#!/bin/sh
# Makes a stock Debian/Ubuntu VM ready for cnfs.netlab, like the local box (vagrant/box/build.sh):
# socat, iproute2, ping, and pyroute2 in a venv at /opt/cnfs-netlab/venv (the inventory's
# ansible_python_interpreter). Needs the guest to reach its distribution's mirror and PyPI.
# Idempotent: does nothing on a VM that has it all (the local box).
set -eu
PYROUTE2=0.9.7
VENV=/opt/cnfs-netlab/venv
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import pyroute2, sys; sys.exit(pyroute2.__version__ != '$PYROUTE2')" 2>/dev/null \
   && command -v socat >/dev/null && command -v ping >/dev/null && command -v ip >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-venv socat iproute2 iputils-ping >/dev/null
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "pyroute2==$PYROUTE2"
"$VENV/bin/python" -c 'import pyroute2; print("cnfs-netlab: pyroute2", pyroute2.__version__, "in", "'"$VENV"'")'
