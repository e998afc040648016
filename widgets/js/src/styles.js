// The element's styles live in its shadow root: the page's CSS cannot reach in, nor ours out.
export const STYLES = `
:host{all:initial;--cs-brand:#2f6fed;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433}
*{box-sizing:border-box}
[hidden]{display:none!important}
.card{position:fixed;right:20px;bottom:20px;z-index:2147483646;width:min(360px,calc(100vw - 40px));background:#fff;
border-radius:12px;box-shadow:0 8px 30px rgba(16,24,40,.18);border-top:4px solid var(--cs-brand);padding:14px 16px}
.card h2{font-size:13px;font-weight:600;color:#475467;margin:0 0 8px;display:flex;align-items:center;gap:8px}
.card ul{list-style:none;margin:0;padding:0}
.card li{padding:8px 0;border-top:1px solid #eaecf0;overflow-wrap:anywhere}
.card li:first-child{border-top:0}
.logo{height:22px;max-width:100px;object-fit:contain}
.x{position:absolute;top:8px;right:8px;border:0;background:none;font-size:20px;line-height:1;color:#667085;cursor:pointer;
padding:4px 8px;border-radius:6px}
.x:hover{background:#f2f4f7}
a{color:var(--cs-brand)}
.backdrop{position:fixed;inset:0;z-index:2147483647;background:rgba(16,24,40,.55);display:flex;align-items:center;
justify-content:center;padding:16px}
.dialog{position:relative;background:#fff;border-radius:14px;width:min(460px,100%);max-height:calc(100vh - 32px);
overflow:auto;padding:24px 24px 20px;box-shadow:0 20px 50px rgba(16,24,40,.3)}
.brand{display:flex;align-items:center;gap:10px;font-weight:600;color:#344054;margin:0 0 14px;padding-right:28px}
.dialog h2{font-size:20px;margin:0 0 6px;line-height:1.25}
.dialog p{margin:0 0 14px;color:#475467}
fieldset{border:0;margin:0 0 12px;padding:0}
legend{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
label.reason{display:flex;gap:10px;align-items:center;padding:9px 12px;border:1px solid #d0d5dd;border-radius:8px;
margin:0 0 8px;cursor:pointer}
label.reason:has(input:checked){border-color:var(--cs-brand);box-shadow:0 0 0 1px var(--cs-brand)}
input[type=radio]{accent-color:var(--cs-brand);margin:0}
textarea{width:100%;min-height:64px;font:inherit;border:1px solid #d0d5dd;border-radius:8px;padding:8px 10px;resize:vertical}
.field{display:block;font-size:13px;color:#475467;margin:0 0 4px}
.offer{border:1px solid #d0d5dd;border-left:4px solid var(--cs-brand);border-radius:10px;padding:14px 16px;margin:0 0 16px}
.offer strong{display:block;font-size:17px;margin:0 0 4px}
.offer span{color:#475467}
.actions{display:flex;flex-wrap:wrap;gap:10px;justify-content:flex-end;margin-top:8px}
button.primary,button.secondary{font:inherit;font-weight:600;border-radius:8px;padding:10px 16px;cursor:pointer}
button.primary{background:var(--cs-brand);color:#fff;border:1px solid var(--cs-brand)}
button.secondary{background:#fff;color:#344054;border:1px solid #d0d5dd}
button:disabled{opacity:.6;cursor:progress}
button:focus-visible,input:focus-visible,textarea:focus-visible,a:focus-visible{outline:3px solid var(--cs-brand);outline-offset:2px}
.dialog .status{margin:10px 0 0;color:#b42318;font-size:14px}
.dialog .status:empty{display:none}
`;
