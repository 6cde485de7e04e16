# Image for the worker and the API (docker-compose.yml picks the command). Sources run with tsx, as in development.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY . .
ENV NODE_ENV=production
USER node
CMD ["npx", "tsx", "workers/main.ts"]
