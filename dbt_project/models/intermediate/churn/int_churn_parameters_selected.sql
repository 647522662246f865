{{ config(materialized='view', tags=['churn_scored']) }}
-- The BG/NBD parameters for this run: the latest fit up to run_date in the churn model table written by
-- customer_warehouse.transform.churn_model, in the time unit this project uses. Built only after
-- the fit (tag churn_scored); an empty relation when the model was never fitted.
with fits as (
    {{ raw_source('churn', 'churn_model', [
        ('r', 'double precision'), ('alpha', 'double precision'), ('a', 'double precision'),
        ('b', 'double precision'), ('time_unit', 'text'), ('log_likelihood', 'double precision'),
        ('customers', 'bigint'), ('fitted_at', 'date'),
    ]) }}
),

final as (
    select r, alpha, a, b, time_unit, log_likelihood, customers, fitted_at
    from fits
    where time_unit = '{{ var("churn_time_unit") }}' and fitted_at <= {{ run_date() }}
    order by fitted_at desc
    limit 1
)

select * from final
