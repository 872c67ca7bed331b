# syntax=docker/dockerfile:1
# Variant of agent.Dockerfile for an NVIDIA GPU: the tensorflow backend through @tensorflow/tfjs-node-gpu 4.22.0,
# which needs CUDA 11.2 and cuDNN 8.1 at run time (hence the CUDA base image) and downloads libtensorflow from the
# internet when it installs (so this build needs network access; the default wasm image does not).
#   docker build -f deploy/docker/agent-gpu.Dockerfile -t fedmeta-agent-gpu .
#   docker run --gpus all ... fedmeta-agent-gpu run
# Only worth it for large models or many episodes per round: the default detector trains and scores well on wasm.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04

FROM ${NODE_IMAGE} AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ ca-certificates && rm -rf /var/lib/apt/lists/*
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
 # Its install script fetches libtensorflow (GPU build) and links the native addon.
 && npm install --no-save --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0 \
 && rm -rf node_modules/@fedmeta/coordinator node_modules/@fedmeta/lab packages/*/src packages/*/test packages/*/tsconfig*.json \
 && mkdir -p /var/lib/fedmeta-agent

FROM ${CUDA_IMAGE}
COPY --from=build /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid 10001 fedmeta && useradd --system --uid 10001 --gid fedmeta --home-dir /var/lib/fedmeta-agent --shell /usr/sbin/nologin fedmeta
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages/shared ./packages/shared
COPY --from=build /app/packages/site-agent ./packages/site-agent
COPY --from=build --chown=10001:10001 /var/lib/fedmeta-agent /var/lib/fedmeta-agent
ENV NODE_ENV=production \
    FEDMETA_AGENT_STATE_DIR=/var/lib/fedmeta-agent \
    FEDMETA_AGENT_BACKEND=tensorflow
USER 10001:10001
VOLUME ["/var/lib/fedmeta-agent"]
ENTRYPOINT ["/usr/local/bin/node", "/app/packages/site-agent/bin/fedmeta-agent"]
CMD ["run"]
