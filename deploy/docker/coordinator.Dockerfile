# syntax=docker/dockerfile:1
# The fedmeta coordinator. Build from the repository root:
#   docker build -f deploy/docker/coordinator.Dockerfile -t fedmeta-coordinator .
# Stage 1 installs from the lock file and compiles TypeScript; stage 2 keeps the production dependencies only;
# the runtime is distroless Node 20 (no shell, no package manager) running as the unprivileged user 65532.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages/shared/package.json packages/shared/
COPY packages/coordinator/package.json packages/coordinator/
COPY packages/site-agent/package.json packages/site-agent/
COPY packages/lab/package.json packages/lab/
# No install scripts: nothing the coordinator needs compiles at install time (msgpackr's native part is a
# prebuilt optional package).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY packages/shared packages/shared
COPY packages/coordinator packages/coordinator
RUN npx tsc -b packages/coordinator \
 && npm prune --omit=dev --no-audit --no-fund --ignore-scripts \
 && rm -rf node_modules/@fedmeta/site-agent node_modules/@fedmeta/lab packages/*/src packages/*/test packages/*/tsconfig*.json packages/*/dist/*.tsbuildinfo \
 && find packages -name '*.map' -delete \
 && mkdir -p /var/lib/fedmeta

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages/shared ./packages/shared
COPY --from=build /app/packages/coordinator ./packages/coordinator
COPY deploy/docker/healthcheck.mjs /app/healthcheck.mjs
COPY --from=build --chown=65532:65532 /var/lib/fedmeta /var/lib/fedmeta
ENV NODE_ENV=production \
    FEDMETA_FROM_DIST=1 \
    FEDMETA_COORDINATOR_SERVER_HOST=0.0.0.0 \
    FEDMETA_COORDINATOR_SERVER_PORT=8443 \
    FEDMETA_COORDINATOR_DATA_DIR=/var/lib/fedmeta
USER 65532:65532
VOLUME ["/var/lib/fedmeta"]
EXPOSE 8443
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["/nodejs/bin/node", "/app/healthcheck.mjs", "8443", "/readyz"]
ENTRYPOINT ["/nodejs/bin/node", "/app/packages/coordinator/bin/fedmeta-coordinator"]
CMD ["serve"]
