# strategy-consumer as a container: docker build -t strategy-consumer .
# Stage 1 builds with the project's own setup script (scripts/setup --build installs the building part of
# deps/debian-packages.txt, the one package list the scripts and CI read) and the CMake preset; stage 2 installs only the runtime subset
# (deps/debian-runtime-packages.txt) and runs as a non-root user. Without Docker: scripts/build-image (podman).

FROM debian:bookworm-slim AS build
# Every layer of either stage carries the label: scripts/build-image removes the ones a rebuild left unused.
LABEL io.strategy-consumer.stage=build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY deps/ deps/
COPY scripts/ scripts/
RUN scripts/setup --build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake --preset default -DSTRATEGY_CONSUMER_BUILD_TESTS=OFF -DSTRATEGY_CONSUMER_BUILD_BENCHMARKS=OFF \
    && cmake --build --preset default --target strategy-consumer \
    && strip build/cpp/strategy-consumer

FROM debian:bookworm-slim
LABEL io.strategy-consumer.stage=runtime org.opencontainers.image.title=strategy-consumer
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY deps/debian-runtime-packages.txt /tmp/debian-runtime-packages.txt
RUN apt-get update -qq \
    && grep -v '^\s*#' /tmp/debian-runtime-packages.txt | grep -v '^\s*$' \
       | DEBIAN_FRONTEND=noninteractive xargs apt-get install -y -qq --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/debian-runtime-packages.txt \
    && groupadd --system --gid 10001 strategy-consumer \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin strategy-consumer
COPY --from=build /src/build/cpp/strategy-consumer /usr/local/bin/strategy-consumer
# The ids the Kubernetes manifests' securityContext runs as (runAsUser and runAsGroup 10001).
USER 10001:10001
EXPOSE 8080
# /health is 200 while the processing loop runs (see README, Operations). With another --http_port, change it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["/usr/local/bin/strategy-consumer"]
