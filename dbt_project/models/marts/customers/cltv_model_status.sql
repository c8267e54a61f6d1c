select * from {{ source('analytics', 'cltv_model_status') }}
