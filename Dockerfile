# Production image: Airflow 3 with the customer_warehouse package, dbt, GX and the DAGs.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.lock /opt/customer-warehouse/requirements.lock
RUN pip install --no-cache-dir -r /opt/customer-warehouse/requirements.lock

COPY --chown=airflow:root pyproject.toml README.md /opt/customer-warehouse/
COPY --chown=airflow:root plugins /opt/customer-warehouse/plugins
COPY --chown=airflow:root dags /opt/customer-warehouse/dags
COPY --chown=airflow:root dbt_project /opt/customer-warehouse/dbt_project
COPY --chown=airflow:root expectations /opt/customer-warehouse/expectations
RUN pip install --no-cache-dir --no-deps -e /opt/customer-warehouse

ENV CW_HOME=/opt/customer-warehouse \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/customer-warehouse/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
