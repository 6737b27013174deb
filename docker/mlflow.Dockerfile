# MLflow tracking server + registry with basic auth, Postgres backend and S3 (MinIO) artifacts.
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow[auth]>=3.5,<4" "psycopg2-binary>=2.9" "boto3>=1.34"
EXPOSE 5000
