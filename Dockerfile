# syntax=docker/dockerfile:1
# Zhida application image: one image for `zhida api`, `zhida worker`, `zhida treasury-sim` and
# `zhida db upgrade` (docker-compose.yml picks the command). See docs/deploy.md.

# --- build: install the project (no dev extras) into a virtual environment ------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/zhida
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > /tmp/requirements.txt \
    && /opt/zhida/bin/pip install -r /tmp/requirements.txt

# Then the project itself (a regular, non-editable install; no [dev] extras).
COPY . ./
RUN /opt/zhida/bin/pip install --no-deps . \
    && /opt/zhida/bin/pip check \
    && /opt/zhida/bin/zhida --help > /dev/null

# --- runtime: the virtual environment only, run as an unprivileged user ----------------------
FROM python:3.11-slim

RUN groupadd --system --gid 10001 zhida \
    && useradd --system --uid 10001 --gid zhida --home-dir /var/lib/zhida --shell /usr/sbin/nologin zhida \
    && install -d -o zhida -g zhida -m 0750 /var/lib/zhida

COPY --from=build /opt/zhida /opt/zhida

# In a container every process listens on all interfaces and talks to a Temporal cluster;
# secrets and URLs come from the environment (docker-compose.yml), never from the image.
ENV PATH=/opt/zhida/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ZHIDA_DATA_DIR=/var/lib/zhida \
    ZHIDA_API_HOST=0.0.0.0 \
    ZHIDA_TREASURY_SIM_HOST=0.0.0.0 \
    ZHIDA_TEMPORAL_EMBEDDED=false

WORKDIR /var/lib/zhida
# Numeric, so platforms that enforce "run as non-root" can verify it.
USER 10001:10001

EXPOSE 8000 8100
CMD ["zhida", "api"]
