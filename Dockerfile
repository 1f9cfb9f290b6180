# syntax=docker/dockerfile:1
# The swarm-operator image: one image for `cfn operator` (the Deployment) and
# `cfn coordinate` (the Swarms' coordinator pods); the pod's args choose.
# NODE_BASE is a build argument so a machine without a registry can build from
# a locally made base (scripts/image/build.sh builds the same image with
# debootstrap + umoci instead, without any image pull).
ARG NODE_BASE=node:22-bookworm-slim

FROM ${NODE_BASE} AS build
WORKDIR /src
# A C compiler for the V2 engine's native agent spawner (bash/native/spawner.c).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY operator ./operator
COPY bash ./bash
COPY scripts/build-native.sh ./scripts/build-native.sh
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts \
 && find dist node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.tsbuildinfo' \) -delete

FROM ${NODE_BASE}
# The V2 engine's tools: the list is scripts/image/packages.txt (a test keeps them equal).
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash coreutils util-linux jq inotify-tools bash-builtins shellcheck ca-certificates \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \
 && (getent group 65532 >/dev/null || groupadd --gid 65532 nonroot) \
 && (getent passwd 65532 >/dev/null || useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot) \
 && install -d -o 65532 -g 65532 /results /data
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/operator ./dist/operator
COPY package.json ./
COPY bin ./bin
COPY --from=build /src/bash ./bash
COPY config ./config
COPY crds ./crds
RUN ln -s /app/bin/cfn.js /usr/local/bin/cfn
# `cfn run`'s V1 memory defaults to ./.cfn: /app is read-only, /tmp is not.
ENV NODE_ENV=production HOME=/home/nonroot CFN_MEMORY_PATH=/tmp/cfn-memory.sqlite
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["cfn"]
CMD ["--help"]
