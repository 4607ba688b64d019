# codebot: one image for Slack, Discord or the console (chosen by the tokens set at run time).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CODEBOT_CODES_DB=/app/data/build/codes.sqlite \
    CODEBOT_DATABASE_URL=sqlite:////var/lib/codebot/state.sqlite
WORKDIR /app

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY data ./data
RUN pip install --no-cache-dir -e . && codebot data build && mkdir -p /var/lib/codebot

# State (quotas, notes, history) lives on a volume; the code DB is rebuilt with the image.
VOLUME ["/var/lib/codebot"]
EXPOSE 3000
RUN useradd --system --home /app codebot && chown -R codebot /var/lib/codebot
USER codebot
CMD ["codebot", "run"]
