# Image of the engine's processes (worker, API, inbound SMTP); docker-compose.yml picks the command of each service.
# Node 24 is the maintained LTS line (the project is tested on Node 20 and later); sources run through tsx, as in
# development, and the workflow bundle is built here once instead of at every worker start.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM deps AS bundle
COPY . .
RUN node --import tsx stack/cluster/bundle-workflows.ts /app/dist/workflow-bundle.js

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js \
    DATA_DIR=/tmp/engine-data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
COPY --from=bundle /app/dist/workflow-bundle.js ./dist/workflow-bundle.js
# Files stay owned by root and read-only to the process: it runs as the image's unprivileged `node` user.
USER node
CMD ["node", "--import", "tsx", "workers/main.ts"]
