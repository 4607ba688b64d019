# codebot: one image for Slack, Discord or the console (chosen by the tokens set at run time).
# Works with the legacy builder (`DOCKER_BUILDKIT=0 docker build .`) and BuildKit alike:
# no BuildKit-only syntax. No Docker engine runs where codebot is developed, so this file is
# reviewed, not built, by the test suite (see README "Scaling").

# ---- build: install codebot into a venv and build the code DB from the sources in data/
FROM python:3.11-slim AS build
ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY data ./data
# a regular (non-editable) install: the runtime image holds no source tree
RUN python -m venv /opt/codebot && /opt/codebot/bin/pip install --no-cache-dir .
# The build reads data/ (and fetches the pinned data wheels) from this source tree, so it
# runs here, with the source tree first on sys.path; the result is read-only at run time.
RUN /opt/codebot/bin/python -c "import sys; from bot.cli import main; sys.exit(main())" \
        data build --output /opt/codes/codes.sqlite \
    && rm -rf /src/data/build

# ---- runtime
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/codebot/bin:$PATH \
    CODEBOT_CODES_DB=/opt/codes/codes.sqlite \
    CODEBOT_DATABASE_URL=sqlite:////var/lib/codebot/state.sqlite
COPY --from=build /opt/codebot /opt/codebot
COPY --from=build /opt/codes /opt/codes
# The state directory is created and chowned BEFORE it is declared a volume: with the
# legacy builder, changes made to a VOLUME path after the VOLUME line are discarded, and
# every state command then failed with "unable to open database file".
RUN useradd --system --uid 10001 --home-dir /var/lib/codebot codebot \
    && mkdir -p /var/lib/codebot \
    && chown codebot:codebot /var/lib/codebot \
    && chmod 0444 /opt/codes/codes.sqlite
VOLUME ["/var/lib/codebot"]
USER codebot
WORKDIR /var/lib/codebot
# 3000: Slack (/slack/events, /healthz, /readyz, /metrics); 8080: the Discord process's
# operations port when CODEBOT_HEALTH_PORT=8080
EXPOSE 3000 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "adapters.healthcheck"]
CMD ["codebot", "run"]

# Licensed CPT® (never in this image): the code DB is read-only here, so import the file
# in a derived image of your own, built where the licensed file lives:
#   FROM codebot
#   USER root
#   COPY cpt-licensed.txt /tmp/cpt.txt
#   RUN chmod 0644 /opt/codes/codes.sqlite && codebot data import-cpt /tmp/cpt.txt \
#       && rm /tmp/cpt.txt && chmod 0444 /opt/codes/codes.sqlite
#   USER codebot
