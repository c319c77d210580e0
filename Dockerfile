# recserve image: a Seldon Core v1 model container (REST 9000, gRPC 9500, metrics 6000).
#
#   docker build -t recserve:0.1.0 .
#   docker run --rm -p 9000:9000 -v "$PWD/model:/mnt/models:ro" recserve:0.1.0     # your model
#   docker run --rm -p 9000:9000 -p 9500:9500 -p 6000:6000 -e RECSERVE_DEMO=true recserve:0.1.0   # demo model
# Without a model at /mnt/models (and no RECSERVE_DEMO) it stays up, not ready, and says why.
#
# Stages: toolchain (Debian node + python3/make/g++ for better-sqlite3's native addon) → build (all deps,
# tsc) and prod-deps (npm ci --omit=dev, compiled here) → runtime (slim Debian node, no compilers).
# Every stage starts from the same NODE_IMAGE so the compiled addons match the runtime's Node ABI and glibc.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# onnxruntime-node's postinstall would download CUDA providers; its CPU binaries ship in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
COPY package.json package-lock.json ./

FROM toolchain AS build
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

FROM toolchain AS prod-deps
# Only the linux-x64 onnxruntime binaries are loaded in the image; the other platforms' are dead weight.
RUN npm ci --omit=dev && npm cache clean --force \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32 node_modules/onnxruntime-node/bin/napi-v*/linux/arm64

FROM ${NODE_IMAGE} AS runtime
# Seldon runs model containers as uid 8888 (Helm defaultUserID) and its preStop hook runs
# /bin/sh -c "/bin/sleep 10": this Debian base has both. The data dir holds the interaction store,
# published versions and the demo model (only with RECSERVE_DEMO=true); it is group 0 writable so an
# arbitrary uid (OpenShift) works too. Mount an emptyDir there when the root filesystem is read-only.
# The server needs node only: npm, npx and corepack are removed from the runtime image.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 && groupadd --system --gid 8888 recserve \
 && useradd --system --uid 8888 --gid 8888 --no-create-home --home-dir /var/lib/recserve --shell /usr/sbin/nologin recserve \
 && mkdir -p /var/lib/recserve \
 && chown 8888:0 /var/lib/recserve \
 && chmod 0775 /var/lib/recserve
WORKDIR /app
ENV NODE_ENV=production \
    PREDICTIVE_UNIT_HTTP_SERVICE_PORT=9000 \
    PREDICTIVE_UNIT_GRPC_SERVICE_PORT=9500 \
    PREDICTIVE_UNIT_METRICS_SERVICE_PORT=6000 \
    PREDICTIVE_UNIT_METRICS_ENDPOINT=/prometheus \
    RECSERVE_HOST=0.0.0.0 \
    RECSERVE_DATA_DIR=/var/lib/recserve \
    LOG_LEVEL=info \
    NODE_OPTIONS=--max-old-space-size=640
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY openapi.yaml ./
COPY proto ./proto
USER 8888:8888
EXPOSE 9000 9500 6000
# For plain `docker run`; Kubernetes uses the probes of seldon-deployment.yaml instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.PREDICTIVE_UNIT_HTTP_SERVICE_PORT+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself (drains in-flight requests, then exits 0). No --demo: a
# container serves the model it was given or reports that it has none.
CMD ["node", "dist/src/cli/index.js", "serve"]
