select * from {{ source('analytics', 'cltv_model_selection') }}
