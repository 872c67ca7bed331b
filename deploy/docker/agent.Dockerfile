# syntax=docker/dockerfile:1
# The fedmeta site agent (`run` to join the federation, `detect` to score flows), on the default wasm backend.
# Build from the repository root:
#   docker build -f deploy/docker/agent.Dockerfile -t fedmeta-agent .
# For an NVIDIA GPU (the tensorflow backend through @tensorflow/tfjs-node-gpu) see agent-gpu.Dockerfile.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages/shared/package.json packages/shared/
COPY packages/coordinator/package.json packages/coordinator/
COPY packages/site-agent/package.json packages/site-agent/
COPY packages/lab/package.json packages/lab/
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY packages/shared packages/shared
COPY packages/site-agent packages/site-agent
RUN npx tsc -b packages/site-agent \
 && npm prune --omit=dev --no-audit --no-fund --ignore-scripts \
 && rm -rf node_modules/@fedmeta/coordinator node_modules/@fedmeta/lab packages/*/src packages/*/test packages/*/tsconfig*.json packages/*/dist/*.tsbuildinfo \
 && find packages -name '*.map' -delete \
 && mkdir -p /var/lib/fedmeta-agent

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages/shared ./packages/shared
COPY --from=build /app/packages/site-agent ./packages/site-agent
COPY --from=build --chown=65532:65532 /var/lib/fedmeta-agent /var/lib/fedmeta-agent
ENV NODE_ENV=production \
    FEDMETA_AGENT_STATE_DIR=/var/lib/fedmeta-agent \
    FEDMETA_AGENT_BACKEND=wasm
USER 65532:65532
VOLUME ["/var/lib/fedmeta-agent"]
# Only when started with --metrics-port 9464 --metrics-host 0.0.0.0.
EXPOSE 9464
ENTRYPOINT ["/nodejs/bin/node", "/app/packages/site-agent/bin/fedmeta-agent"]
CMD ["run"]
