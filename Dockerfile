FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY chaos_service ./chaos_service
RUN pip install --no-cache-dir .
EXPOSE 8474
ENTRYPOINT []
CMD ["chaos-service", "engine", "-host", "0.0.0.0"]
