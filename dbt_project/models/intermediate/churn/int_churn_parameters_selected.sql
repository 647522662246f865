{{ config(materialized='view', tags=['churn_scored']) }}
-- The BG/NBD parameters for this run: the latest fit up to run_date in the churn model table written by
-- customer_warehouse.transform.churn_model, in the time unit and model variant this run uses. Built only after
-- the fit (tag churn_scored); an empty relation when the model was never fitted.
with fits as (
    {{ raw_source('churn', 'churn_model', [
        ('r', 'double precision'), ('alpha', 'double precision'), ('a', 'double precision'),
        ('b', 'double precision'), ('time_unit', 'text'), ('log_likelihood', 'double precision'),
        ('customers', 'bigint'), ('variant', 'text'), ('fitted_at', 'date'),
    ]) }}
),

final as (
    select r, alpha, a, b, time_unit, coalesce(variant, 'bgnbd') as variant, log_likelihood, customers, fitted_at
    from fits
    where time_unit = '{{ var("churn_time_unit") }}'
        and coalesce(variant, 'bgnbd') = '{{ var("churn_model_variant") }}'
        and fitted_at <= {{ run_date() }}
    order by fitted_at desc
    limit 1
)

select * from final
