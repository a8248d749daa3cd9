# logpipe node shipper image. Build: docker build -t logpipe:0.1.0 .   (no engine runs on the dev VMs;
# the DaemonSet and chart in configs/ reference ghcr.io/logpipe/logpipe)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY logpipe ./logpipe
COPY plugins ./plugins
RUN pip install --no-cache-dir --prefix=/install ".[speed]"

FROM python:3.11-slim
COPY --from=build /install /usr/local
# Positions and file buffers live on the node (hostPath) so a restarted pod resumes where it was.
ENV LOGPIPE_STATE_DIR=/var/lib/logpipe PYTHONDONTWRITEBYTECODE=1
VOLUME ["/var/lib/logpipe"]
EXPOSE 9600
ENTRYPOINT ["logpipe"]
CMD ["run", "-f", "/etc/logpipe/", "--http-host", "0.0.0.0"]
