#!/usr/bin/env bash
# Regenerates the pictures of docs/diagrams.md: each stage built on a 2-node built-in lab of its own
# (lab "docsdiagram"), drawn by playbooks/diagram.yml, torn down; the lab is removed at the end.
# Run from the top of a checkout after `make setup`, as root:  docs/diagrams/make.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
inv=$(mktemp -d)
trap 'ansible-playbook -i "$inv" playbooks/lab_destroy.yml >/dev/null; rm -rf "$inv"' EXIT
printf 'plugin: cnfs.netlab.lab\nlab: docsdiagram\nnodes: 2\nunderlay: 10.0.0.0/24\n' > "$inv/lab.yml"
ansible-playbook -i "$inv" playbooks/lab.yml >/dev/null
for stage in network_namespace single_node multi_node overlay; do
  echo "== $stage"
  ansible-playbook -i "$inv" "playbooks/$stage.yml" >/dev/null
  ansible-playbook -i "$inv" playbooks/verify.yml | grep -E 'TOTAL' || true
  ansible-playbook -i "$inv" playbooks/diagram.yml -e "diagram_dir=$PWD/docs/diagrams/$stage" \
    -e "{\"diagram_formats\": [\"png\", \"mermaid\"]}" -e "diagram_title='stage $stage, 2 nodes, as it really is'" >/dev/null
  rm -f "docs/diagrams/$stage/lab.mmd" "docs/diagrams/$stage/lab.dot"
  ansible-playbook -i "$inv" playbooks/teardown.yml >/dev/null
done
