# The paper's reference environment (PyPI dgl==2.1.0, torch==2.2.1, numpy<2 and what `import dgl`
# and the reference's tools need; about 5 GB), created once in target/reference-venv. Sourced by
# the scripts that run DGL beside gnn-soup; sets REFERENCE_PYTHON.
REFERENCE_VENV=target/reference-venv
REFERENCE_PYTHON=$REFERENCE_VENV/bin/python
if ! "$REFERENCE_PYTHON" -c "import dgl, ogb, torch; assert torch.__version__.startswith('2.2.1')" 2>/dev/null; then
  python3 -m venv "$REFERENCE_VENV"
  "$REFERENCE_VENV/bin/pip" install -q "dgl==2.1.0" "torch==2.2.1" "numpy<2" "pandas<2.3" scipy networkx requests tqdm psutil pydantic pyyaml scikit-learn outdated six
  # Without their own dependencies: torchdata's newest has no datapipes (DGL 2.1 imports them),
  # and ogb's would upgrade torch.
  "$REFERENCE_VENV/bin/pip" install -q --no-deps "torchdata==0.7.1" ogb
fi
