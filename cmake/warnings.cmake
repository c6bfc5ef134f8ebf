# One list of warning flags, applied to chatcore's own targets only (never to
# the dependencies' headers, which are included as SYSTEM).
set(CHATCORE_WARNING_FLAGS
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough
  -Wformat=2 -Wmissing-declarations
  # Designated initializers that name only some fields are idiomatic C++20
  # for option structs: do not warn about the rest.
  -Wno-missing-field-initializers)

function(chatcore_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:${CHATCORE_WARNING_FLAGS}>
    $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wpedantic>)
  if(CHATCORE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
