"""Centrifugo's rules: which token or option allows a connect, subscribe, publish…"""
